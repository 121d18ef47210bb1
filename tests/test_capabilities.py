"""EHLO reply parsing: every keyword mailwire uses, and lines that must be ignored."""

from __future__ import annotations

import pytest

from mailwire.protocol.capabilities import Capabilities
from mailwire.protocol.replies import Reply, ReplyParser


def caps(*lines: str) -> Capabilities:
    return Capabilities.from_ehlo(Reply(250, ("mail.example.com Hello", *lines)))


def test_full_ehlo_reply_from_the_wire() -> None:
    parser = ReplyParser()
    parser.feed(
        b"250-mail.example.com at your service\r\n"
        b"250-PIPELINING\r\n"
        b"250-SIZE 35882577\r\n"
        b"250-STARTTLS\r\n"
        b"250-AUTH LOGIN PLAIN XOAUTH2 SCRAM-SHA-256\r\n"
        b"250-8BITMIME\r\n"
        b"250-SMTPUTF8\r\n"
        b"250-CHUNKING\r\n"
        b"250-DSN\r\n"
        b"250 ENHANCEDSTATUSCODES\r\n"
    )
    reply = parser.next_reply()
    assert reply is not None
    capabilities = Capabilities.from_ehlo(reply)
    assert capabilities.esmtp
    assert capabilities.pipelining
    assert capabilities.size == 35882577
    assert capabilities.starttls
    assert capabilities.auth_mechanisms == ("LOGIN", "PLAIN", "XOAUTH2", "SCRAM-SHA-256")
    assert capabilities.eightbitmime
    assert capabilities.smtputf8
    assert capabilities.chunking
    assert capabilities.dsn
    assert capabilities.enhanced_status_codes
    # The greeting name on the first line is not a keyword.
    assert "MAIL.EXAMPLE.COM" not in capabilities.extensions
    assert set(capabilities.extensions) == {
        "PIPELINING", "SIZE", "STARTTLS", "AUTH", "8BITMIME", "SMTPUTF8", "CHUNKING", "DSN",
        "ENHANCEDSTATUSCODES",
    }


def test_nothing_offered() -> None:
    capabilities = caps()
    assert capabilities.esmtp
    assert capabilities.extensions == {}
    for flag in (capabilities.pipelining, capabilities.starttls, capabilities.eightbitmime,
                 capabilities.smtputf8, capabilities.chunking, capabilities.dsn,
                 capabilities.enhanced_status_codes):
        assert flag is False
    assert capabilities.size is None
    assert capabilities.auth_mechanisms == ()


def test_helo_only_server() -> None:
    capabilities = Capabilities.none()
    assert not capabilities.esmtp
    assert capabilities.extensions == {}
    assert not capabilities.starttls


@pytest.mark.parametrize(
    ("keyword", "attribute"),
    [
        ("PIPELINING", "pipelining"),
        ("STARTTLS", "starttls"),
        ("8BITMIME", "eightbitmime"),
        ("SMTPUTF8", "smtputf8"),
        ("CHUNKING", "chunking"),
        ("DSN", "dsn"),
        ("ENHANCEDSTATUSCODES", "enhanced_status_codes"),
    ],
)
def test_each_flag_keyword(keyword: str, attribute: str) -> None:
    assert getattr(caps(keyword), attribute) is True
    assert getattr(caps(keyword.lower()), attribute) is True
    assert getattr(caps(), attribute) is False
    assert keyword in caps(keyword)
    assert keyword.lower() in caps(keyword)


def test_keyword_with_surrounding_whitespace() -> None:
    assert caps("  STARTTLS  ").starttls


# -- SIZE ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "size"),
    [
        ("SIZE 10240000", 10240000),
        ("size 1", 1),
        ("SIZE 0", 0),
        ("SIZE", 0),
        ("SIZE ", 0),
        ("SIZE 1000 extra words", 1000),
        # Garbage: treated as "no limit announced".
        ("SIZE abc", 0),
        ("SIZE -5", 0),
        ("SIZE 1e6", 0),
        ("SIZE 12.5", 0),
        ("SIZE 0x100", 0),
    ],
)
def test_size(line: str, size: int) -> None:
    assert caps(line).size == size


def test_size_absent() -> None:
    assert caps("PIPELINING").size is None


@pytest.mark.parametrize(
    "value",
    [
        "\u00b2",  # SUPERSCRIPT TWO: str.isdigit() is true, int() refuses it
        "\u2460",  # CIRCLED DIGIT ONE: the same
        "9" * 5000,  # more digits than int() converts (sys.get_int_max_str_digits)
    ],
    ids=["superscript-two", "circled-one", "5000-digits"],
)
def test_garbage_size_from_a_hostile_server_never_raises(value: str) -> None:
    # SECURITY.md item 6: garbage from the server never escapes as a bare exception.
    capabilities = caps(f"SIZE {value}")
    assert "SIZE" in capabilities
    size = capabilities.size
    assert isinstance(size, int)
    assert size >= 0


def test_size_with_non_ascii_digits_is_garbage() -> None:
    # ARABIC-INDIC "12": not an RFC 1870 size-value (ASCII digits only).
    assert caps("SIZE \u0661\u0662").size in (0, 12)


# -- AUTH ------------------------------------------------------------------------------------


def test_auth_mechanisms() -> None:
    assert caps("AUTH PLAIN LOGIN CRAM-MD5").auth_mechanisms == ("PLAIN", "LOGIN", "CRAM-MD5")


def test_auth_mechanisms_upper_cased() -> None:
    assert caps("auth plain Login").auth_mechanisms == ("PLAIN", "LOGIN")


def test_old_auth_equals_form() -> None:
    assert caps("AUTH=LOGIN").auth_mechanisms == ("LOGIN",)
    assert caps("AUTH=LOGIN PLAIN").auth_mechanisms == ("LOGIN", "PLAIN")
    assert caps("auth=login").auth_mechanisms == ("LOGIN",)


def test_old_and_new_auth_lines_together() -> None:
    capabilities = caps("AUTH LOGIN PLAIN", "AUTH=LOGIN")
    assert capabilities.auth_mechanisms == ("LOGIN", "PLAIN")


def test_repeated_auth_lines_are_merged() -> None:
    capabilities = caps("AUTH PLAIN", "SIZE 100", "AUTH CRAM-MD5 SCRAM-SHA-1", "AUTH PLAIN")
    assert capabilities.auth_mechanisms == ("PLAIN", "CRAM-MD5", "SCRAM-SHA-1")


def test_auth_without_mechanisms() -> None:
    capabilities = caps("AUTH")
    assert "AUTH" in capabilities
    assert capabilities.auth_mechanisms == ()


def test_auth_ignores_invalid_mechanism_names() -> None:
    assert caps("AUTH PLAIN <bad> LO=GIN CRAM-MD5").auth_mechanisms == ("PLAIN", "CRAM-MD5")


def test_auth_multiple_spaces() -> None:
    assert caps("AUTH  PLAIN   LOGIN").auth_mechanisms == ("PLAIN", "LOGIN")


# -- invalid lines ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "",
        "   ",
        "-STARTTLS",
        "START_TLS",
        "STARTTLS!",
        "ÜBER",
        "SIZE=1000",
        "<script>",
        "\x00STARTTLS",
        "STARTTLS\x00",
        "STARTTLS\tx",
        "\ufffd\ufffd",
    ],
)
def test_invalid_keyword_lines_are_ignored(line: str) -> None:
    capabilities = caps(line, "PIPELINING")
    assert capabilities.extensions == {"PIPELINING": ""}


def test_keyword_parameters_kept() -> None:
    capabilities = caps("DELIVERBY 240", "X-EXPS GSSAPI NTLM", "XCLIENT ADDR NAME")
    assert capabilities.extensions["DELIVERBY"] == "240"
    assert capabilities.extensions["X-EXPS"] == "GSSAPI NTLM"
    assert "XCLIENT" in capabilities


def test_first_line_only_greeting() -> None:
    # A server that names STARTTLS on the greeting line does not offer it.
    capabilities = Capabilities.from_ehlo(Reply(250, ("STARTTLS",)))
    assert not capabilities.starttls
