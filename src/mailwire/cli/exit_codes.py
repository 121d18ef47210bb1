"""The command line's exit statuses, and which mailwire error leads to which."""

from __future__ import annotations

import enum

from mailwire.errors import (
    AuthenticationError,
    ConfigError,
    DataRefusedError,
    GreetingRefusedError,
    RecipientsRefusedError,
    SenderRefusedError,
    SmtpConnectionError,
    SmtpProtocolError,
    SmtpSecurityError,
    SmtpTimeoutError,
    SmtpUsageError,
)


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    CONNECTION = 3
    AUTHENTICATION = 4
    REFUSED = 5
    INTERRUPTED = 130


EPILOG = """\
exit status:
  0    success
  1    any other error
  2    usage or configuration error: a bad option or configuration file, a missing
       password, or a message that cannot be sent as it is
  3    connection error: the server or proxy could not be reached or dropped the
       connection, TLS or the certificate failed, a phase timed out, the server refused
       the session or broke the protocol
  4    authentication failed
  5    the server refused the sender, the message, or some or all recipients (`send`
       then lists which; the message went to the recipients it accepted)
  130  interrupted (Ctrl-C)
"""


def exit_code_for(error: BaseException) -> ExitCode:
    if isinstance(error, AuthenticationError):
        return ExitCode.AUTHENTICATION
    if isinstance(error, SenderRefusedError | RecipientsRefusedError | DataRefusedError):
        return ExitCode.REFUSED
    if isinstance(error, ConfigError | SmtpUsageError):
        return ExitCode.USAGE
    if isinstance(error, SmtpConnectionError | SmtpTimeoutError | SmtpSecurityError
                  | SmtpProtocolError | GreetingRefusedError):
        return ExitCode.CONNECTION
    return ExitCode.FAILURE
