"""Proxy URLs parse exactly or not at all (SECURITY.md, "Proxy URLs").

An unescaped ``#``, ``/`` or ``?`` in a password once ended the authority early: the rest was
read as a fragment, path or query, and ``user:1234`` as host ``user``, port 1234.
"""

from __future__ import annotations

import pytest

from mailwire import HttpProxy, SmtpClient, SmtpUsageError, SocksProxy, SocksVersion
from mailwire.transport.proxy import parse_proxy


@pytest.mark.parametrize("url", [
    "socks5://user:1234#5678@127.0.0.1:1080",
    "socks5://user:1234/5678@127.0.0.1:1080",
    "socks5h://user:1234?5678@127.0.0.1:1080",
    "http://user:1234#5678@127.0.0.1:3128",
    "socks5://user:12@34@127.0.0.1:1080",
    "socks5://user:12 34@127.0.0.1:1080",
    "socks5://127.0.0.1:1080/anything",
    "http://127.0.0.1:3128?x=1",
    "socks5://127.0.0.1:1080#",
])
def test_what_does_not_parse_exactly_is_refused_with_the_password_hidden(url: str) -> None:
    with pytest.raises(SmtpUsageError) as caught:
        SmtpClient("localhost").proxy = url
    message = str(caught.value)
    assert message.startswith("not a proxy URL: ")
    assert "must be percent-encoded" in message or "expected" in message
    assert "1234" not in message and "5678" not in message


def test_percent_encoded_characters_reach_the_proxy_as_written() -> None:
    proxy = parse_proxy("socks5://us%40er:p%23a%2Fs%3Fs%20w%40rd@127.0.0.1:1080")
    assert proxy == SocksProxy("127.0.0.1", 1080, SocksVersion.SOCKS5, "us@er", "p#a/s?s w@rd",
                               False)


def test_a_trailing_slash_is_fine() -> None:
    assert parse_proxy("http://u:p@proxy.example:3128/") == HttpProxy("proxy.example", 3128,
                                                                       "u", "p")
