"""Command encoders: exact bytes, and no argument can carry a control character (injection)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mailwire.errors import SmtpUsageError
from mailwire.protocol import commands
from mailwire.protocol.addresses import Mailbox, parse_mailbox

# Every C0 control, DEL, and the CR/LF shapes used in real injection attacks.
CONTROLS = [chr(c) for c in range(0x20)] + ["\x7f", "\r\n", "\n\r"]

SENDER = parse_mailbox("sender@example.com")
RECIPIENT = parse_mailbox("rcpt@example.com")


def _ids(values: list[str]) -> list[str]:
    return [repr(v) for v in values]


# -- exact bytes -----------------------------------------------------------------------------


def test_fixed_commands() -> None:
    assert commands.DATA == b"DATA\r\n"
    assert commands.RSET == b"RSET\r\n"
    assert commands.NOOP == b"NOOP\r\n"
    assert commands.QUIT == b"QUIT\r\n"
    assert commands.STARTTLS == b"STARTTLS\r\n"
    assert commands.AUTH_CANCEL == b"*\r\n"


@pytest.mark.parametrize(
    "name", ["client.example.com", "localhost", "[192.0.2.1]", "[IPv6:2001:db8::1]"]
)
def test_ehlo_and_helo(name: str) -> None:
    assert commands.ehlo(name) == b"EHLO " + name.encode() + b"\r\n"
    assert commands.helo(name) == b"HELO " + name.encode() + b"\r\n"


@pytest.mark.parametrize(
    "name",
    ["", "has space.example", "bad_underscore.example", "-lead.example", "a..b", "bücher.de"],
)
def test_ehlo_rejects_names_that_are_not_domains(name: str) -> None:
    with pytest.raises(SmtpUsageError):
        commands.ehlo(name)
    with pytest.raises(SmtpUsageError):
        commands.helo(name)


def test_mail_and_rcpt() -> None:
    assert commands.mail(SENDER) == b"MAIL FROM:<sender@example.com>\r\n"
    assert commands.mail(Mailbox("")) == b"MAIL FROM:<>\r\n"
    assert commands.rcpt(RECIPIENT) == b"RCPT TO:<rcpt@example.com>\r\n"


def test_parameters() -> None:
    assert (
        commands.mail(SENDER, ["SIZE=1000", "BODY=8BITMIME", "SMTPUTF8"])
        == b"MAIL FROM:<sender@example.com> SIZE=1000 BODY=8BITMIME SMTPUTF8\r\n"
    )
    assert (
        commands.rcpt(RECIPIENT, ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;rcpt@example.com"])
        == b"RCPT TO:<rcpt@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;rcpt@example.com\r\n"
    )


def test_utf8_address() -> None:
    mailbox = parse_mailbox("josé@bücher.de")
    assert commands.mail(mailbox, ["SMTPUTF8"]) == (
        "MAIL FROM:<josé@bücher.de> SMTPUTF8\r\n".encode()
    )


# -- control characters are rejected in every argument ---------------------------------------


@pytest.mark.parametrize("control", CONTROLS, ids=_ids(CONTROLS))
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_ehlo_name_rejects_controls(control: str, where: str) -> None:
    name = {"start": control + "a.example", "middle": "a" + control + ".example",
            "end": "a.example" + control}[where]
    with pytest.raises(SmtpUsageError):
        commands.ehlo(name)
    with pytest.raises(SmtpUsageError):
        commands.helo(name)


def test_ehlo_name_injection_shape() -> None:
    # nodemailer GHSA-vvjj-xcjg-gr5g: a second command hidden in the EHLO name.
    with pytest.raises(SmtpUsageError):
        commands.ehlo("client.example\r\nMAIL FROM:<attacker@evil.example>")


@pytest.mark.parametrize("control", CONTROLS, ids=_ids(CONTROLS))
@pytest.mark.parametrize("encoder", [commands.mail, commands.rcpt], ids=["mail", "rcpt"])
def test_addresses_reject_controls(
    control: str, encoder: Callable[[Mailbox], bytes]
) -> None:
    # A Mailbox built by hand (not through parse_mailbox) is still checked by the encoder.
    for text in (f"a{control}b@example.com", f"a@example.com{control}", f"{control}a@example.com",
                 f'"a{control}b"@example.com'):
        with pytest.raises(SmtpUsageError):
            encoder(Mailbox(text))


def test_address_injection_shape() -> None:
    evil = Mailbox("a@example.com>\r\nRCPT TO:<victim@example.com")
    with pytest.raises(SmtpUsageError):
        commands.mail(evil)
    with pytest.raises(SmtpUsageError):
        commands.rcpt(evil)


@pytest.mark.parametrize("control", CONTROLS, ids=_ids(CONTROLS))
@pytest.mark.parametrize(
    "template",
    ["SIZE=1{}", "ENVID={}x", "NOTIFY=SUCCESS{}", "ORCPT=rfc822;a@b{}", "{}SMTPUTF8", "BODY{}"],
)
def test_parameters_reject_controls(control: str, template: str) -> None:
    parameter = template.format(control)
    with pytest.raises(SmtpUsageError):
        commands.mail(SENDER, [parameter])
    with pytest.raises(SmtpUsageError):
        commands.rcpt(RECIPIENT, ["NOTIFY=NEVER", parameter])


@pytest.mark.parametrize("control", CONTROLS, ids=_ids(CONTROLS))
def test_auth_mechanism_rejects_controls(control: str) -> None:
    with pytest.raises(SmtpUsageError):
        commands.auth(f"PLAIN{control}", None)
    with pytest.raises(SmtpUsageError):
        commands.auth(f"{control}LOGIN", b"x")


def test_lone_surrogate_is_a_usage_error() -> None:
    # A str from sys.argv or os.fsdecode can carry surrogate escapes; it cannot be encoded, so
    # it must be refused like any other bad argument (SmtpUsageError), not crash.
    with pytest.raises(SmtpUsageError):
        commands.ehlo("a\udce9.example")
    with pytest.raises(SmtpUsageError):
        commands.mail(Mailbox("a\udce9@example.com"))
    with pytest.raises(SmtpUsageError):
        commands.mail(SENDER, ["ENVID=\udce9"])


# -- malformed parameters --------------------------------------------------------------------


@pytest.mark.parametrize(
    "parameter",
    [
        "",
        "=value",
        "-SIZE=1",
        "SIZE=",
        "SIZE 1000",
        "SIZE=1 000",
        "SIZE==1",
        "ENVID=a=b",
        "KEY_WORD=1",
        "ÜBER=1",
    ],
)
def test_malformed_parameters_rejected(parameter: str) -> None:
    with pytest.raises(SmtpUsageError):
        commands.mail(SENDER, [parameter])
    with pytest.raises(SmtpUsageError):
        commands.rcpt(RECIPIENT, [parameter])


def test_parameter_values_may_be_utf8() -> None:
    # RFC 6531 allows UTF-8 in esmtp-value (not in the keyword).
    assert commands.rcpt(RECIPIENT, ["ORCPT=utf-8;josé@example.com"]).endswith(
        " ORCPT=utf-8;josé@example.com\r\n".encode()
    )


# -- xtext (RFC 3461) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("", ""),
        ("simple", "simple"),
        ("a+b", "a+2Bb"),
        ("a=b", "a+3Db"),
        ("a b", "a+20b"),
        ("rfc822;user@example.com", "rfc822;user@example.com"),
        ("<id@host>", "<id@host>"),
        ("\r\n", "+0D+0A"),
        ("\x00\x7f", "+00+7F"),
        ("é", "+C3+A9"),
        ("~!", "~!"),
    ],
)
def test_xtext(value: str, encoded: str) -> None:
    assert commands.xtext(value) == encoded


def test_xtext_output_is_a_valid_parameter_value() -> None:
    every_byte = bytes(range(256)).decode("latin-1")
    value = commands.xtext(every_byte)
    assert all(0x21 <= ord(c) <= 0x7E and c != "=" for c in value)
    line = commands.mail(SENDER, ["ENVID=" + value])
    assert line.count(b"\r\n") == 1
    assert line.endswith(b"\r\n")


def _xtext_decode(value: str) -> bytes:
    out = bytearray()
    i = 0
    while i < len(value):
        if value[i] == "+":
            out.append(int(value[i + 1 : i + 3], 16))
            i += 3
        else:
            out += value[i].encode()
            i += 1
    return bytes(out)


@pytest.mark.parametrize("value", ["", "a+b=c d", "\x00\r\n\x7f", "üñí©ødé", "+2B"])
def test_xtext_round_trip(value: str) -> None:
    assert _xtext_decode(commands.xtext(value)) == value.encode()


# -- AUTH ------------------------------------------------------------------------------------


def test_auth_without_initial_response() -> None:
    assert commands.auth("LOGIN", None) == b"AUTH LOGIN\r\n"


def test_auth_initial_response_is_base64() -> None:
    assert commands.auth("PLAIN", b"\0tim\0tanstaaftanstaaf") == (
        b"AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n"
    )


def test_auth_empty_initial_response_is_equals_sign() -> None:
    assert commands.auth("EXTERNAL", b"") == b"AUTH EXTERNAL =\r\n"


def test_auth_response_lines() -> None:
    assert commands.auth_response(b"tim") == b"dGlt\r\n"
    assert commands.auth_response(b"") == b"\r\n"
    # Any bytes, CR and LF included, stay inside one base64 line.
    line = commands.auth_response(b"\r\n.\r\nQUIT\r\n" * 100)
    assert line.count(b"\r\n") == 1
    assert line.endswith(b"\r\n")


# -- BDAT ------------------------------------------------------------------------------------


def test_bdat() -> None:
    assert commands.bdat(1000, last=False) == b"BDAT 1000\r\n"
    assert commands.bdat(0, last=True) == b"BDAT 0 LAST\r\n"
    assert commands.bdat(12, last=True) == b"BDAT 12 LAST\r\n"


def test_bdat_rejects_negative_size() -> None:
    with pytest.raises(SmtpUsageError):
        commands.bdat(-1, last=True)


# -- checked() -------------------------------------------------------------------------------


def test_checked_returns_utf8_bytes() -> None:
    assert commands.checked("josé", "x") == "josé".encode()
    assert commands.checked(b"raw", "x") == b"raw"


@pytest.mark.parametrize("control", CONTROLS, ids=_ids(CONTROLS))
def test_checked_rejects_controls_in_str_and_bytes(control: str) -> None:
    with pytest.raises(SmtpUsageError, match="control character"):
        commands.checked("ab" + control, "argument")
    with pytest.raises(SmtpUsageError, match="control character"):
        commands.checked(("ab" + control).encode(), "argument")
