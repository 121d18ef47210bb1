"""What a client's attributes accept: durations in seconds (Aspose's milliseconds warn), ports
(Aspose's ``(host, user, password)`` order is a clear error), the default sender, and a
docstring for every constructor parameter."""

from __future__ import annotations

import inspect
import math
import pydoc
import re
import warnings
from pathlib import Path

import pytest

from mailwire import AsyncSmtpClient, SmtpClient, SmtpUsageError
from mailwire.options import ClientOptions
from mailwire.warning_categories import SuspiciousValueWarning

CLIENTS = [SmtpClient, AsyncSmtpClient]


@pytest.mark.parametrize("kind", CLIENTS)
@pytest.mark.parametrize("name", ["timeout", "greeting_timeout"])
@pytest.mark.parametrize("value", [0, -1, -0.5, math.nan, math.inf, "5", None, True])
def test_a_duration_must_be_a_positive_number_of_seconds(
    kind: type[ClientOptions], name: str, value: object
) -> None:
    with pytest.raises(SmtpUsageError, match=f"^{name} (must be a positive number of seconds|"
                                             "is a number of seconds)"):
        kind("h", **{name: value})  # type: ignore[arg-type]
    client = kind("h")
    with pytest.raises(SmtpUsageError, match=f"^{name} "):
        setattr(client, name, value)
    assert getattr(client, name) > 0


@pytest.mark.parametrize(("name", "value", "shown"), [
    ("timeout", 60000, "timeout=60000 is 16.7 hours"),
    ("greeting_timeout", 4000, "greeting_timeout=4000 is 1.1 hours"),
])
def test_milliseconds_warn_once_naming_the_value_and_seconds(
    name: str, value: int, shown: str
) -> None:
    with pytest.warns(SuspiciousValueWarning) as caught:
        client = SmtpClient("h", **{name: value})  # type: ignore[arg-type]
        setattr(client, name, value)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith(shown)
    assert "durations are seconds" in message and f"{name}={value / 1000:g}" in message
    assert caught[0].filename == __file__
    assert getattr(client, name) == value  # a warning, not a refusal


def test_plausible_durations_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SmtpClient("h", timeout=600, greeting_timeout=0.25)


@pytest.mark.parametrize("kind", CLIENTS)
def test_asposes_host_user_password_order_shows_the_keyword_form(
    kind: type[ClientOptions]
) -> None:
    with pytest.raises(SmtpUsageError) as caught:
        kind("localhost", "user", "secret")  # type: ignore[arg-type]
    message = str(caught.value)
    assert "SmtpClient('localhost', username='user', password=...)" in message
    assert "(host, port, username, password, security)" in message
    assert "secret" not in message


@pytest.mark.parametrize("value", [0, 65536, -25, True, "587", 25.0])
def test_a_port_is_a_whole_number_from_1_to_65535(value: object) -> None:
    with pytest.raises(SmtpUsageError, match="port must be a number"):
        SmtpClient("h", value)  # type: ignore[arg-type]
    client = SmtpClient("h", 25)
    with pytest.raises(SmtpUsageError, match="port must be a number from 1 to 65535"):
        client.port = value  # type: ignore[assignment]
    client.port = None
    assert client.effective_port == 587


def test_default_sender_is_an_attribute() -> None:
    client = SmtpClient("h")
    assert client.default_sender is None
    client.default_sender = "Me <me@example.com>"
    assert SmtpClient("h", default_sender="me@example.com").default_sender == "me@example.com"
    with pytest.raises(SmtpUsageError, match="default_sender"):
        client.default_sender = "me@example.com\r\nBcc: x@example.com"
    assert client.default_sender == "Me <me@example.com>"


def test_default_sender_from_every_configuration_format(tmp_path: Path) -> None:
    toml = tmp_path / "mailwire.toml"
    toml.write_text('host = "h"\nsender = "Me <me@example.com>"\n')
    assert SmtpClient.from_config(toml, environ={}).default_sender == "Me <me@example.com>"
    dotnet = tmp_path / "app.config"
    dotnet.write_text('<configuration><system.net><mailSettings><smtp from="net@example.com">'
                      '<network host="h"/></smtp></mailSettings></system.net></configuration>')
    assert SmtpClient.from_config(dotnet, environ={}).default_sender == "net@example.com"
    environment = {"MAILWIRE_HOST": "h", "MAILWIRE_SENDER": "env@example.com",
                   "XDG_CONFIG_HOME": str(tmp_path / "none")}
    assert AsyncSmtpClient.from_config(toml, environ=environment).default_sender == (
        "env@example.com")


def test_every_constructor_parameter_is_documented_in_help() -> None:
    shown = pydoc.render_doc(SmtpClient, renderer=pydoc.plaintext)
    for name in inspect.signature(ClientOptions.__init__).parameters:
        if name != "self":
            assert re.search(rf"\b{name}(, \w+)?: \S", shown) or re.search(
                rf"\w+, {name}: \S", shown), name
    flat = " ".join(shown.replace(" |", " ").split())
    for unit in ("timeout: seconds", "greeting_timeout: seconds", "(default 100)",
                 "(default 10)", "are secrets"):
        assert unit in flat
