"""The strict mailbox parser (RFC 5321 4.1.2, RFC 6531)."""

from __future__ import annotations

import pytest

from mailwire.errors import SmtpUsageError
from mailwire.protocol import commands
from mailwire.protocol.addresses import (
    MAX_DOMAIN,
    MAX_LOCAL_PART,
    Mailbox,
    is_valid_domain,
    parse_mailbox,
)

# -- valid -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "user@example.com",
        "first.last@example.com",
        "a@b",
        "x@localhost",
        "user+tag@example.com",
        "!#$%&'*+-/=?^_`{|}~@example.com",
        "UPPER@EXAMPLE.COM",
        "1234@123.example",
        "a@sub-domain.example-host.com",
        '"quoted"@example.com',
        '"with space"@example.com',
        '"a@b"@example.com',
        '"dot..dot"@example.com',
        '".lead"@example.com',
        '"escaped \\" quote"@example.com',
        '"escaped \\\\ backslash"@example.com',
        '""@example.com',
        "user@[192.0.2.1]",
        "user@[255.255.255.255]",
        "user@[0.0.0.0]",
        "user@[IPv6:2001:db8::1]",
        "user@[IPv6:::1]",
        "user@[ipv6:::ffff:192.0.2.1]",
        "user@[tag:general-literal]",
    ],
)
def test_valid_ascii_addresses(address: str) -> None:
    mailbox = parse_mailbox(address)
    assert mailbox.text == address
    assert str(mailbox) == address
    assert not mailbox.needs_smtputf8


@pytest.mark.parametrize(
    "address",
    ["josé@example.com", "user@bücher.de", "用户@例子.广告", "δοκιμή@παράδειγμα.δοκιμή",
     '"josé müller"@example.com', "Pelé@例え.テスト"],
)
def test_valid_utf8_addresses_need_smtputf8(address: str) -> None:
    mailbox = parse_mailbox(address)
    assert mailbox.text == address
    assert mailbox.needs_smtputf8


def test_angle_brackets_are_optional() -> None:
    assert parse_mailbox("<user@example.com>") == Mailbox("user@example.com")


def test_null_reverse_path() -> None:
    assert parse_mailbox("<>", allow_null=True) == Mailbox("")
    assert parse_mailbox("", allow_null=True) == Mailbox("")
    with pytest.raises(SmtpUsageError):
        parse_mailbox("<>")
    with pytest.raises(SmtpUsageError):
        parse_mailbox("")


def test_length_limits_at_the_boundary() -> None:
    local = "a" * MAX_LOCAL_PART
    assert parse_mailbox(f"{local}@example.com").text == f"{local}@example.com"
    label = "b" * 63
    domain = ".".join([label] * 3) + "." + "c" * (MAX_DOMAIN - 3 * 64)
    assert len(domain) == MAX_DOMAIN
    assert parse_mailbox(f"a@{domain}").text == f"a@{domain}"


def test_utf8_local_part_limit_counts_octets() -> None:
    assert parse_mailbox("é" * 32 + "@example.com")  # 64 octets
    with pytest.raises(SmtpUsageError, match="octets"):
        parse_mailbox("é" * 33 + "@example.com")  # 33 characters, 66 octets


def test_parsed_addresses_encode_to_one_line() -> None:
    for text in ['"a b"@example.com', "josé@bücher.de", "u@[IPv6:2001:db8::1]"]:
        line = commands.rcpt(parse_mailbox(text))
        assert line.count(b"\r\n") == 1
        assert line.endswith(b"\r\n")


# -- invalid ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "plainaddress",
        "@example.com",
        "user@",
        "user@@example.com",
        "user@.example.com",
        "user@example..com",
        "user@example.com.",
        "user@-example.com",
        "user@example-.com",
        "user@exa_mple.com",
        ".user@example.com",
        "user.@example.com",
        "us..er@example.com",
        "us er@example.com",
        "user@exa mple.com",
        "user name@example.com",
        "<user@example.com",
        "user@example.com>",
        "<<user@example.com>>",
        "Name <user@example.com>",
        "user@example.com, other@example.com",
        'unclosed"@example.com',
        '"unclosed@example.com',
        '"a"b"@example.com',
        '"back\\slash\\"@example.com',
        "user(comment)@example.com",
        "user@[192.0.2.256]",
        "user@[192.0.2]",
        "user@[01.2.3.4]",
        "user@[IPv6:gggg::1]",
        "user@[]",
        "user@[192.0.2.1",
        "user@[:nothing]",
        "a@" + "b" * 64 + ".com",
        "a" * (MAX_LOCAL_PART + 1) + "@example.com",
        "a@" + ".".join(["c" * 63] * 4) + ".de",
    ],
)
def test_invalid_addresses(address: str) -> None:
    with pytest.raises(SmtpUsageError):
        parse_mailbox(address)


@pytest.mark.parametrize(
    "address",
    [
        '"a\r\nb"@example.com',  # MimeKit CVE-2026-30227: CRLF inside a quoted local part
        '"a\r\nRCPT TO:<victim@example.com>"@example.com',
        '"a\\\r\\\nb"@example.com',  # quoted-pair CR / LF: only %d32-126 may be escaped
        '"a\nb"@example.com',
        '"a\rb"@example.com',
        '"a\x00b"@example.com',
        '"a\tb"@example.com',
        '"a\x7fb"@example.com',
        '"a\\\x00"@example.com',
    ],
)
def test_controls_inside_quotes_rejected(address: str) -> None:
    with pytest.raises(SmtpUsageError):
        parse_mailbox(address)


CONTROLS = [chr(c) for c in range(0x20)] + ["\x7f"]


@pytest.mark.parametrize("control", CONTROLS, ids=[repr(c) for c in CONTROLS])
def test_controls_inside_the_address_rejected(control: str) -> None:
    for address in (f"us{control}er@example.com", f"user@exa{control}mple.com",
                    f"user{control}@example.com", f"user@{control}example.com"):
        with pytest.raises(SmtpUsageError):
            parse_mailbox(address)


@pytest.mark.parametrize("control", CONTROLS, ids=[repr(c) for c in CONTROLS])
def test_controls_around_the_address_rejected_not_stripped(control: str) -> None:
    # SECURITY.md item 1: "Reject - never strip - CR, LF, NUL, other C0 controls, DEL."
    for address in (f"user@example.com{control}", f"{control}user@example.com",
                    f"<user@example.com>{control}"):
        with pytest.raises(SmtpUsageError):
            parse_mailbox(address)


@pytest.mark.parametrize(
    "address",
    ["\udce9@example.com", "user@exa\udce9mple.com", "caf\udcc3\udca9@example.com"],
)
def test_lone_surrogates_are_a_usage_error(address: str) -> None:
    # Surrogate escapes (sys.argv, os.fsdecode of non-UTF-8 bytes) are not text: refuse them
    # with mailwire's own error, not a UnicodeEncodeError from inside the parser.
    with pytest.raises(SmtpUsageError):
        parse_mailbox(address)


@pytest.mark.parametrize(
    "address",
    [
        "user@[IPv6:12345::1]",  # a group of five hex digits
        "user@[IPv6:1:2:3:4:5:6:7:8:9]",  # nine groups
        "user@[IPv6:::::]",
        "user@[IPv6:1::2::3]",  # two "::"
        "user@[IPv6:1.2]",
    ],
)
def test_malformed_ipv6_literals_rejected(address: str) -> None:
    # RFC 5321 4.1.3 IPv6-addr: at most 8 groups of 1-4 hex digits, one "::" at most.
    with pytest.raises(SmtpUsageError):
        parse_mailbox(address)


# -- is_valid_domain -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "valid"),
    [
        ("example.com", True),
        ("a", True),
        ("xn--bcher-kva.de", True),
        ("bücher.de", True),
        ("[192.0.2.1]", True),
        ("[IPv6:2001:db8::1]", True),
        ("", False),
        (".", False),
        ("a.", False),
        ("-a", False),
        ("a" * 64, False),
        ("a" * 63, True),
        ("[300.1.1.1]", False),
        ("[]", False),
    ],
)
def test_is_valid_domain(domain: str, valid: bool) -> None:
    assert is_valid_domain(domain) is valid
