"""Loading mailwire's settings from configuration files and the environment.

Formats: TOML (``mailwire.toml``, or ``[tool.mailwire]`` in ``pyproject.toml``) with named
profiles; the .NET application configuration file (``app.config``/``web.config``
``<system.net><mailSettings>``, see ``mailwire.config.dotnet`` for how it maps); and
``MAILWIRE_*`` environment variables, which override the file. Passwords may be given
indirectly with ``password_env`` or ``password_command`` (see ``mailwire.config.secrets``).
The search order for a file when none is named is in ``mailwire.config.search``.

Keys (the same in every TOML table, and as ``MAILWIRE_<KEY>`` variables):

    host, port, username, password | password_env | password_command,
    oauth_token | oauth_token_env | oauth_token_command, security, timeout, greeting_timeout,
    local_hostname (the EHLO name), sender, proxy (URL), bind ("host[:port]"),
    tls_versions (["TLS12", "TLS13"]), ca_file, ca_path, client_certificate, client_key,
    insecure_skip_verify, allowed_mechanisms (["SCRAM-SHA-256", "PLAIN"]),
    allow_plaintext_credentials, dkim_key, dkim_selector, dkim_domain (DKIM signing)

Relative paths (and the folder a password command runs in) are relative to the file that gave
them. Any problem raises ``mailwire.ConfigError`` naming the file, line, key and problem.
"""

from mailwire.config.apply import apply_settings, require_host
from mailwire.config.loader import load_settings
from mailwire.config.search import SEARCH_ORDER
from mailwire.config.settings import Settings

__all__ = [
    "SEARCH_ORDER",
    "Settings",
    "apply_settings",
    "load_settings",
    "require_host",
]
