"""Resolving secrets given indirectly: ``password_env`` names an environment variable,
``password_command`` a program whose output is the password (the same for ``oauth_token_*``).

The program runs without a shell (a string is split like a POSIX shell would), with no input,
in the folder of the configuration file that named it, and must finish within
``COMMAND_TIMEOUT`` seconds and print at most ``MAX_OUTPUT`` bytes. One trailing newline is
removed; more than one line of output is an error. No error message ever contains what the
program printed on its standard output.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

from mailwire.config import keys
from mailwire.config.bounded_run import OutputTooLarge, run_bounded
from mailwire.config.keys import Raw

COMMAND_TIMEOUT = 30.0
MAX_OUTPUT = 64 * 1024
"""A password or token is a line; a program printing more than this is stopped."""
STDERR_SHOWN = 200


def resolve(slot: str, layer: Mapping[str, Raw], environ: Mapping[str, str]) -> str | None:
    """The secret ``slot`` (``password`` or ``oauth_token``) from whichever key gives it."""
    direct, from_env, from_command = keys.SECRET_SLOTS[slot]
    if direct in layer:
        value: str = keys.parse(direct, layer[direct])
        return value
    if from_env in layer:
        return _from_environment(from_env, layer[from_env], environ)
    if from_command in layer:
        return run_command(keys.parse(from_command, layer[from_command]), layer[from_command])
    return None


def _from_environment(key: str, raw: Raw, environ: Mapping[str, str]) -> str:
    name: str = keys.parse(key, raw)
    value = environ.get(name)
    if value is None:
        raise raw.origin.error(f"names the environment variable {name}, which is not set")
    if value == "":
        raise raw.origin.error(f"names the environment variable {name}, which is empty")
    return value


def run_command(arguments: tuple[str, ...], raw: Raw) -> str:
    """The first line of the program's output; a ConfigError naming ``raw``'s key on failure."""
    shown = arguments[0]
    try:
        finished = run_bounded(arguments, cwd=raw.origin.folder, timeout=COMMAND_TIMEOUT,
                               max_output=MAX_OUTPUT)
    except FileNotFoundError:
        raise raw.origin.error(f"cannot run {shown!r}: no such program") from None
    except PermissionError:
        raise raw.origin.error(f"cannot run {shown!r}: permission denied") from None
    except subprocess.TimeoutExpired:
        raise raw.origin.error(f"{shown!r} did not finish within {COMMAND_TIMEOUT:g} s") from None
    except OutputTooLarge:
        raise raw.origin.error(f"{shown!r} printed more than {MAX_OUTPUT // 1024} KiB and was "
                               "stopped; make it print only the secret") from None
    except OSError as error:
        raise raw.origin.error(f"cannot run {shown!r}: {error.strerror or error}") from None
    if finished.returncode != 0:
        raise raw.origin.error(f"{shown!r} failed with exit status {finished.returncode}"
                               f"{_stderr_tail(finished.stderr_tail)}")
    try:
        output = finished.stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise raw.origin.error(f"{shown!r} printed something that is not UTF-8") from None
    output = output.removesuffix("\n").removesuffix("\r")
    if not output:
        raise raw.origin.error(f"{shown!r} printed nothing")
    if "\n" in output or "\r" in output:
        raise raw.origin.error(f"{shown!r} printed more than one line; make it print only the "
                               "secret (for example [\"sh\", \"-c\", \"pass show x | head -n1\"])")
    return output


def _stderr_tail(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    last = lines[-1]
    return f": {last[:STDERR_SHOWN]}{'...' if len(last) > STDERR_SHOWN else ''}"
