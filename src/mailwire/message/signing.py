"""DKIM-signing a prepared message in two passes over its body, without a second copy in memory.

The signature needs the body hash before the header section is sent, so the body is read twice:
first to hash it, then to send it. How it is read again depends on the input:

- bytes, files named by a path, seekable binary files: read again from the start (a path is
  opened again), and the header section read the second time must be the one that was signed;
- message objects: their written pieces are already in memory; they are kept for the second
  pass and let go of one by one as they are sent;
- iterators and streams that cannot seek: spooled, ``SPOOL_IN_MEMORY`` bytes in memory and the
  rest in an anonymous temporary file (deleted when closed), so memory stays bounded.

The second pass hashes the body again as it is sent: a body that changed in between (a file
written meanwhile) fails the message before the end of its data, so nothing is delivered with a
signature that does not verify. A body without a final line break gets one (see
``BodyHasher.lacks_final_line_break``).
"""

from __future__ import annotations

import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from mailwire.errors import MessageError
from mailwire.message.dkim_signer import DkimSigner
from mailwire.message.sources import CHUNK_SIZE

SPOOL_IN_MEMORY = 1024 * 1024
CRLF = b"\r\n"

Reread = Callable[[], Iterator[bytes]]
"""The body again, from its first byte after the header section."""


@dataclass(slots=True)
class SignedMessage:
    header: bytes
    """The header section as sent, the DKIM-Signature field first."""
    body: Iterator[bytes]
    size: int
    """The size of the header section and body as sent (before framing)."""
    eight_bit: bool


class _Keep(Protocol):
    def add(self, chunk: bytes) -> None: ...
    def replay(self) -> Iterator[bytes]: ...
    def close(self) -> None: ...


def sign_message(signer: DkimSigner, header: bytes, body: Iterator[bytes],
                 reread: Reread | None, *, in_memory: bool) -> SignedMessage:
    """Sign ``header`` (final, CRLF line breaks) and the ``body`` that follows it; the second
    pass uses ``reread``, or keeps the body (``in_memory``: a list, else a spool)."""
    hasher = signer.body_hasher()
    kept: _Keep | None = None
    if reread is None:
        kept = _Pieces() if in_memory else _Spool()
    size = 0
    eight_bit = not header.isascii()
    try:
        for chunk in body:
            hasher.update(chunk)
            size += len(chunk)
            eight_bit = eight_bit or not chunk.isascii()
            if kept is not None:
                kept.add(chunk)
    except BaseException as error:
        if kept is not None:
            kept.close()
        if isinstance(error, OSError):
            raise MessageError(f"reading the message for DKIM signing failed: {error}") from None
        raise
    digest = hasher.digest()
    tail = CRLF if hasher.lacks_final_line_break else b""
    signed_header = signer.signature_field(header, digest) + header
    second = reread() if reread is not None else kept.replay()  # type: ignore[union-attr]
    return SignedMessage(signed_header, _checked(second, signer, digest, tail),
                         len(signed_header) + size + len(tail), eight_bit)


def _checked(body: Iterator[bytes], signer: DkimSigner, digest: bytes,
             tail: bytes) -> Iterator[bytes]:
    hasher = signer.body_hasher()
    for chunk in body:
        hasher.update(chunk)
        yield chunk
    if hasher.digest() != digest:
        raise MessageError("the message body changed between DKIM signing and sending (a file "
                           "written meanwhile?); the transfer was abandoned, nothing was "
                           "delivered")
    if tail:
        yield tail


class _Pieces:
    """The body's chunks in memory (they already were), let go of as they are sent."""

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()

    def add(self, chunk: bytes) -> None:
        self._chunks.append(chunk)

    def replay(self) -> Iterator[bytes]:
        chunks = self._chunks
        while chunks:
            yield chunks.popleft()

    def close(self) -> None:
        self._chunks.clear()


class _Spool:
    """The body of a one-shot stream: in memory up to ``SPOOL_IN_MEMORY``, then on disk."""

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115

    def add(self, chunk: bytes) -> None:
        self._file.write(chunk)

    def replay(self) -> Iterator[bytes]:
        spool = self._file
        try:
            spool.seek(0)
            while chunk := spool.read(CHUNK_SIZE):
                yield chunk
        finally:
            spool.close()

    def close(self) -> None:
        self._file.close()
