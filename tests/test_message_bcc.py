"""Bcc never reaches the recipients, whatever line breaks the header section uses.

The framer turns every CR, LF and CRLF into CRLF, so the header section is read with that same
definition: a bare CR before ``Bcc:``, CR-only line ends, mixed ones, a CR split from its LF
across chunks, folded and Resent-Bcc fields, for every kind of input, with and without an
explicit envelope. Each case is checked on the wire form the framer produces (SECURITY.md,
"Input the user did not choose": headers split on the framer's line breaks).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mailwire import SecurityOptions, SmtpClient
from mailwire.devserver import DevServer
from mailwire.message import MessageInput, PreparedMessage, prepare
from mailwire.protocol.framing import DataFramer

SECRET = b"secret@hidden.example"


def wire(prepared: PreparedMessage) -> bytes:
    """What goes on the wire after DATA (the framer's output, end marker included)."""
    framer = DataFramer()
    return b"".join(framer.frame(chunk) for chunk in prepared.chunks) + framer.finish()


def header_lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def as_path(data: bytes, folder: Path) -> MessageInput:
    path = folder / "message.eml"
    path.write_bytes(data)
    return path


INPUTS: dict[str, Callable[[bytes, Path], MessageInput]] = {
    "bytes": lambda data, _: data,
    "bytearray": lambda data, _: bytearray(data),
    "memoryview": lambda data, _: memoryview(data),
    "path": as_path,
    "file-object": lambda data, _: io.BytesIO(data),
    "iterator-1": lambda data, _: chunked(data, 1),
    "iterator-2": lambda data, _: chunked(data, 2),
    "iterator-5": lambda data, _: chunked(data, 5),
}

# Each shape hides "Bcc: secret" from a reader that only breaks lines at LF.
SHAPES: dict[str, bytes] = {
    "bare CR before Bcc": (b"From: a@example.com\r\nTo: b@example.com\rBcc: secret@hidden.example"
                           b"\r\nSubject: s\r\n\r\nbody\r\n"),
    "CR-only line ends": (b"From: a@example.com\rTo: b@example.com\rBcc: secret@hidden.example\r"
                          b"Subject: s\r\rbody\r"),
    "mixed line ends": (b"From: a@example.com\nTo: b@example.com\r\nBcc: secret@hidden.example\r"
                        b"Subject: s\n\r\nbody\r\n"),
    "bare CR, Resent-Bcc": (b"Resent-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                            b"Resent-From: f@example.com\r\nResent-To: b@example.com\r"
                            b"Resent-Bcc: secret@hidden.example\r\n"
                            b"From: a@example.com\r\nTo: old@example.com\r\n\r\nbody\r\n"),
    "folded with bare CRs": (b"From: a@example.com\rTo: b@example.com\rBcc: c@example.com,\r"
                             b" secret@hidden.example\rSubject: s\r\rbody\r"),
    "folded with a tab after LF": (b"From: a@example.com\nTo: b@example.com\nBcc:\n\t"
                                   b"secret@hidden.example\nSubject: s\n\nbody\n"),
    "Bcc last, then CR CR": (b"From: a@example.com\r\nTo: b@example.com\r\n"
                             b"Bcc: secret@hidden.example\r\rbody\r\n"),
    "LF CR as the blank line": (b"From: a@example.com\nTo: b@example.com\n"
                                b"Bcc: secret@hidden.example\n\rbody\n"),
    "lower case, space before colon": (b"From: a@example.com\rTo: b@example.com\r"
                                       b"bCC : secret@hidden.example\r\rbody\r"),
}


@pytest.mark.parametrize("explicit", [False, True], ids=["envelope-from-headers", "explicit"])
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("kind", list(INPUTS))
def test_bcc_never_reaches_the_wire(kind: str, shape: str, explicit: bool,
                                    tmp_path: Path) -> None:
    raw = SHAPES[shape]
    envelope = {"sender": "env@example.com", "recipients": ["x@example.org"]} if explicit else {}
    prepared = prepare(INPUTS[kind](raw, tmp_path), **envelope)
    sent = wire(prepared)
    assert SECRET not in sent
    assert not any(line.lower().lstrip().startswith((b"bcc", b"resent-bcc"))
                   for line in header_lines(sent))
    assert b"\r\n\r\nbody\r\n" in sent  # the body is still there, after one blank line
    if explicit:
        assert [r.text for r in prepared.recipients] == ["x@example.org"]
    else:
        assert "secret@hidden.example" in [r.text for r in prepared.recipients]


@pytest.mark.parametrize("kind", list(INPUTS))
def test_the_rest_of_the_message_is_kept_as_the_framer_would_send_it(
    kind: str, tmp_path: Path
) -> None:
    raw = (b"From: a@example.com\rTo: b@example.com\rBcc: secret@hidden.example\r"
           b"Subject: s\r\r.line one\rline two\n")
    sent = wire(prepare(INPUTS[kind](raw, tmp_path)))
    assert sent == (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: s\r\n\r\n"
                    b"..line one\r\nline two\r\n.\r\n")


@pytest.mark.parametrize("kind", list(INPUTS))
def test_size_is_the_size_of_what_is_sent(kind: str, tmp_path: Path) -> None:
    raw = SHAPES["mixed line ends"]
    prepared = prepare(INPUTS[kind](raw, tmp_path))
    content = b"".join(prepared.chunks)
    if prepared.size is not None:
        assert prepared.size == len(content)


def test_a_cr_at_a_chunk_border_is_one_line_break_with_the_lf_after_it() -> None:
    # "\r" ends one chunk and "\n" starts the next: one CRLF, not a blank line that would end
    # the header section early and leave the Bcc field in the body.
    chunks = [b"From: a@example.com\r", b"\nTo: b@example.com\r",
              b"\nBcc: secret@hidden.example\r", b"\n\r", b"\nbody\r\n"]
    prepared = prepare(iter(chunks))
    sent = wire(prepared)
    assert SECRET not in sent
    assert sent == b"From: a@example.com\r\nTo: b@example.com\r\n\r\nbody\r\n.\r\n"


def test_a_message_that_starts_with_a_blank_line_has_no_header_fields() -> None:
    raw = b"\r\nBcc: not a header, body text\r\n"
    prepared = prepare(raw, sender="a@example.com", recipients=["b@example.com"])
    assert b"".join(prepared.chunks) == raw


@pytest.mark.parametrize("kind", ["bytes", "path", "iterator-5"])
def test_a_real_server_receives_no_bcc(kind: str, tmp_path: Path,
                                       server_pool: Callable[..., DevServer]) -> None:
    server = server_pool()
    with SmtpClient(server.host, server.port, security=SecurityOptions.NONE,
                    timeout=5.0) as client:
        result = client.send(INPUTS[kind](SHAPES["bare CR before Bcc"], tmp_path))
    (received,) = server.wait_for_messages(1)
    assert set(result.accepted) == {"b@example.com", "secret@hidden.example"}
    assert received.rcpt_tos == ("b@example.com", "secret@hidden.example")
    assert SECRET not in received.data
