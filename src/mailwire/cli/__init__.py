"""The ``mailwire`` command line: ``send``, ``probe``, ``serve`` and ``demo``.

    mailwire [-v] [--version] COMMAND [options]

    send    compose a message (or take an .eml file) and send it; prints each recipient as
            accepted or refused. Connection settings come from the configuration file
            (--config, --profile; see ``mailwire.config``), MAILWIRE_* variables and options.
    probe   HOST[:PORT]: which security modes work and why the others fail, greeting, EHLO
            extensions and AUTH mechanisms before and after TLS, TLS version, cipher,
            certificate, time per phase; --json for scripts.
    serve   a development SMTP server on 127.0.0.1 that saves every message as .eml.
    demo    starts such a server with STARTTLS and AUTH and sends a message through it.

``-v`` prints the SMTP conversation on standard error, with AUTH exchanges redacted by the
library. Errors are one line, ``mailwire: error: ...``, never a traceback. Progress shows on
standard error only when it is a terminal.

Exit status:
    0    success
    1    any other error
    2    usage or configuration error (bad option or file, missing password, a message that
         cannot be sent as it is)
    3    connection, TLS, certificate, timeout or proxy error; greeting refused; protocol broken
    4    authentication failed
    5    the server refused the sender, the message, or some or all recipients
    130  interrupted
"""

from mailwire.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
