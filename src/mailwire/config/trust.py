"""What a configuration file found in the current folder may not do.

Such a file may have been written by someone else: a cloned repository, a pull request's
checkout in a CI job, a shared folder. So, unlike a file the user named or the user's own
file, it may not:

* run commands (``password_command``, ``oauth_token_command``);
* read environment variables other than ``MAILWIRE_*`` (``password_env``,
  ``oauth_token_env``): the environment holds other programs' secrets;
* turn certificate verification off (``insecure_skip_verify = true``);
* allow credentials over an unencrypted connection (``allow_plaintext_credentials = true``).

Each rule is the ``refused_when_found`` column of ``mailwire.config.table``. A file that breaks
one is refused with an error naming the line, not silently half-used. Who may own or write the
file is checked in ``mailwire.config.files``.
"""

from __future__ import annotations

from collections.abc import Iterable

from mailwire.config import keys
from mailwire.config.keys import FileSettings, Layer
from mailwire.config.search import Found, Trust
from mailwire.config.table import BY_KEY

_DIRECT_SECRETS = ("password", "oauth_token")


def check(found: Found, used: Iterable[Layer]) -> None:
    """Refuse what a file of the current folder may not say, in the layers that are used."""
    if found.trust is not Trust.FOUND:
        return
    for layer in used:
        for key, raw in layer.items():
            rule = BY_KEY[key].refused_when_found
            reason = rule(keys.parse(key, raw)) if rule is not None else None
            if reason is not None:
                raise raw.origin.error(
                    f"{reason}, which a configuration file found in the current folder may not "
                    "do (anyone who can write that folder could have written it); name the file "
                    "with --config FILE or MAILWIRE_CONFIG (from_config(path) in Python) if you "
                    "trust it, or move this setting to your own ~/.config/mailwire/config.toml")


def holds_secret(file_settings: FileSettings) -> bool:
    """Whether any table of the file gives a password or token itself."""
    layers = [file_settings.defaults, *file_settings.profiles.values()]
    return any(key in layer for layer in layers for key in _DIRECT_SECRETS)
