"""Reading a configuration file: its size, its owner and who else may write or read it.

* Every file is read from one open descriptor (the checks and the reading see the same file)
  and may hold at most ``MAX_SIZE`` bytes.
* A file mailwire found by searching (the current folder, or the user's own
  ``~/.config/mailwire/config.toml``) must belong to the user running mailwire and may not be
  writable by other users (by its group only when the group is the user's private one), as
  git's ``safe.directory`` and OpenSSH's checks on their own files. A file the user named is
  trusted: naming it is the way to use a file these checks refuse.
* A file that holds a password or token itself (not through ``password_env`` or
  ``password_command``) and that every user of the machine may read gives an
  ``InsecureSettingWarning``, as msmtp's permission check does.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mailwire.errors import ConfigError
from mailwire.warning_categories import InsecureSettingWarning, warn

MAX_SIZE = 1024 * 1024
"""A configuration file is a few hundred bytes; this bounds what a hostile one costs."""


def read(path: Path, *, searched: bool) -> tuple[bytes, os.stat_result]:
    """The bytes of ``path`` and its status; ``searched``: it was found, not named."""
    try:
        with path.open("rb") as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise ConfigError(f"{path}: not a regular file")
            if searched:
                check_owner(path, status)
            content = handle.read(MAX_SIZE + 1)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    if len(content) > MAX_SIZE:
        raise ConfigError(f"{path}: larger than {MAX_SIZE // 1024} KiB; a configuration file "
                          "holds a few settings")
    return content, status


def check_owner(path: Path, status: os.stat_result) -> None:
    """Refuse a file another user owns or may write."""
    me = _effective_uid()
    if me is None:  # no owners to compare (Windows)
        return
    advice = ("name it with --config FILE or MAILWIRE_CONFIG (from_config(path) in Python) "
              "if you trust it")
    if status.st_uid != me:
        raise ConfigError(f"{path}: belongs to {_user_name(status.st_uid)}, not to you "
                          f"({_user_name(me)}); refusing a configuration file found by "
                          f"searching that another user wrote: {advice}")
    mode = stat.S_IMODE(status.st_mode)
    if mode & stat.S_IWOTH or (mode & stat.S_IWGRP and not _private_group(status.st_gid, me)):
        raise ConfigError(f"{path}: other users may change it (mode {mode:04o}); refusing a "
                          f"configuration file found by searching: run chmod go-w {path}, "
                          f"or {advice}")


def warn_if_readable(path: Path, status: os.stat_result, holds_secret: bool) -> None:
    if holds_secret and _effective_uid() is not None and status.st_mode & stat.S_IROTH:
        warn(f"{path} holds a password and every user of this machine may read it: run "
             f"chmod 600 {path}, or give it with password_env or password_command",
             InsecureSettingWarning)


def _effective_uid() -> int | None:
    geteuid = getattr(os, "geteuid", None)
    return geteuid() if geteuid is not None else None


def _private_group(gid: int, uid: int) -> bool:
    """The user's own group (Debian's user private groups), with no other member."""
    import grp
    import pwd

    try:
        user = pwd.getpwuid(uid)
        group = grp.getgrgid(gid)
    except KeyError:
        return False
    return gid == user.pw_gid and group.gr_name == user.pw_name and not (
        set(group.gr_mem) - {user.pw_name})


def _user_name(uid: int) -> str:
    import pwd

    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
