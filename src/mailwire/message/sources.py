"""The kinds of raw message input, each turned into a stream of byte chunks read as it is sent.

Accepted: ``bytes``-like objects, paths (``pathlib.Path`` or any ``os.PathLike``), binary file
objects and iterables of ``bytes`` chunks. A ``str`` is refused: it could be a path or the text
of a message, and guessing wrong would read a file the caller did not mean, or quote their text
in an error. A file or stream of any size costs one chunk of memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from typing import IO, TypeAlias

from mailwire.errors import SmtpUsageError

CHUNK_SIZE = 256 * 1024

MessageInput: TypeAlias = "Message | bytes | bytearray | memoryview | os.PathLike[str] | IO[bytes] | Iterable[bytes]"  # noqa: E501


@dataclass(slots=True)
class Source:
    """A raw message's chunks; ``size`` and ``eight_bit`` when known without reading it."""

    chunks: Iterator[bytes]
    size: int | None
    eight_bit: bool | None


def open_source(message: bytes | bytearray | memoryview | os.PathLike[str] | IO[bytes]
                | Iterable[bytes] | str) -> Source:
    """The chunk stream of a raw message input (a path is opened here, read as it is sent)."""
    if isinstance(message, str):
        raise SmtpUsageError(
            "a str is not a message: pass a pathlib.Path for a file, or the message's bytes "
            "(text.encode()) for a message held in memory"
        )
    if isinstance(message, bytes | bytearray):
        if len(message) <= CHUNK_SIZE:
            return Source(iter((bytes(message),)), len(message), not message.isascii())
        return Source(_slices(memoryview(message)), len(message), not message.isascii())
    if isinstance(message, memoryview):
        view = message.cast("B")
        return Source(_slices(view), len(view), None)
    if isinstance(message, os.PathLike):
        path = os.fspath(message)
        try:
            size = os.path.getsize(path)
            handle = open(path, "rb")  # noqa: SIM115 - _read_file closes it
        except OSError as exc:
            raise SmtpUsageError(f"cannot read message file {path!r}: {exc.strerror}") from None
        return Source(_read_file(handle), size, None)
    if hasattr(message, "read"):
        return Source(_read_file(message, close=False), None, None)  # type: ignore[arg-type]
    try:
        chunks = iter(message)
    except TypeError:
        raise SmtpUsageError(
            f"a {type(message).__name__} is not a message: pass an email.message.Message, "
            "bytes, a pathlib.Path, a binary file or an iterable of bytes") from None
    return Source(chunks, None, None)


def reopener(message: object) -> Callable[[], Iterator[bytes]] | None:
    """How to read a raw input again from where it starts now (bytes, a path, a seekable binary
    file); None for a stream that can be read only once. Call it before reading starts."""
    if isinstance(message, bytes | bytearray | memoryview | os.PathLike):
        return lambda: open_source(message).chunks
    if hasattr(message, "read") and hasattr(message, "seek") and _seekable(message):
        handle: IO[bytes] = message  # type: ignore[assignment]
        try:
            start = handle.tell()
        except (OSError, ValueError):
            return None

        def again() -> Iterator[bytes]:
            handle.seek(start)
            return _read_file(handle, close=False)

        return again
    return None


def _seekable(stream: object) -> bool:
    try:
        return bool(stream.seekable())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


def _slices(view: memoryview) -> Iterator[bytes]:
    for start in range(0, len(view), CHUNK_SIZE):
        yield bytes(view[start : start + CHUNK_SIZE])


def _read_file(handle: IO[bytes], *, close: bool = True) -> Iterator[bytes]:
    try:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk
    finally:
        if close:
            handle.close()
