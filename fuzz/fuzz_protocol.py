"""Coverage-guided fuzzing of the sans-I/O core with atheris: ReplyParser and DataFramer.

Run: python fuzz/fuzz_protocol.py -runs=100000   (any libFuzzer flag works; see fuzz/README.md)

Each input is split by the fuzzer into a mode byte, chunk sizes and a payload:
- ReplyParser: the payload fed in random splits must give the same replies, or the same
  SmtpProtocolError, as the payload fed whole; no other exception; the buffer stays bounded.
- DataFramer: any chunking gives the same wire form; un-stuffing it gives back the normalized
  message; CRLF "." CRLF only at the very end; no bare CR or LF.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["mailwire.protocol"]):
    from mailwire.errors import SmtpProtocolError
    from mailwire.protocol.capabilities import Capabilities
    from mailwire.protocol.framing import DataFramer, normalize_line_ends
    from mailwire.protocol.replies import Reply, ReplyParser

MAX_LINE = 64
MAX_LINES = 8
END_MARKER = b"\r\n.\r\n"

Outcome = tuple[list[Reply], type[BaseException] | None]


def split(data: bytes, sizes: list[int]) -> list[bytes]:
    pieces: list[bytes] = []
    position = 0
    for size in sizes:
        if position >= len(data):
            break
        pieces.append(data[position : position + size])
        position += size
    pieces.append(data[position:])
    return pieces


def parse(pieces: list[bytes]) -> Outcome:
    parser = ReplyParser(max_line_length=MAX_LINE, max_lines=MAX_LINES)
    replies: list[Reply] = []
    try:
        for piece in pieces:
            parser.feed(piece)
            while (reply := parser.next_reply()) is not None:
                replies.append(reply)
                Capabilities.from_ehlo(reply)
            assert len(parser._data) - parser._position <= MAX_LINE, "partial line over the cap"
            assert len(parser._lines) < MAX_LINES, "pending lines over the cap"
    except SmtpProtocolError as exc:
        return replies, type(exc)
    return replies, None


def check_replies(data: bytes, sizes: list[int]) -> None:
    whole = parse([data])
    assert parse(split(data, sizes)) == whole, "a split changed the replies"
    for reply in whole[0]:
        assert 200 <= reply.code <= 599


def unstuff(wire: bytes) -> bytes:
    lines: list[bytes] = []
    position = 0
    while True:
        end = wire.find(b"\r\n", position)
        assert end >= 0, "no end marker"
        line = wire[position:end]
        position = end + 2
        if line == b".":
            assert position == len(wire), "bytes after the end marker"
            return b"".join(line + b"\r\n" for line in lines)
        lines.append(line[1:] if line.startswith(b".") else line)


def frame(pieces: list[bytes]) -> bytes:
    framer = DataFramer()
    return b"".join(framer.frame(piece) for piece in pieces) + framer.finish()


def check_framing(data: bytes, sizes: list[int]) -> None:
    wire = frame(split(data, sizes))
    assert wire == frame([data]), "chunking changed the wire form"
    expected = normalize_line_ends(data)
    if expected and not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    assert unstuff(wire) == expected, "un-stuffing did not give back the message"
    assert wire.count(b"\r") == wire.count(b"\n") == wire.count(b"\r\n"), "bare CR or LF"
    if wire != b".\r\n":
        assert wire.find(END_MARKER) == len(wire) - len(END_MARKER), "early end of data"


def test_one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    mode = provider.ConsumeIntInRange(0, 1)
    sizes = [provider.ConsumeIntInRange(0, 16) for _ in range(provider.ConsumeIntInRange(0, 8))]
    payload = provider.ConsumeBytes(provider.remaining_bytes())
    if mode == 0:
        check_replies(payload, sizes)
    else:
        check_framing(payload, sizes)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
