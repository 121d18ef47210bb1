"""Connection set-up time: TCP connect, greeting and EHLO, plus STARTTLS and a second EHLO
where the mode has it, or the TLS handshake first for implicit TLS. QUIT is not timed.

Every client gets the same verifying ``SSLContext`` (trusting the benchmark's own CA) and
connects to ``127.0.0.1``. mailwire is timed around ``connect()``; smtplib around its
constructor, ``ehlo()`` and ``starttls()``; aiosmtplib around ``connect()`` (and ``ehlo()``
when ``connect()`` did not send one).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import time
from collections.abc import Callable

import aiosmtplib

import mailwire
from benchmarks.sinks import HOST

TIMEOUT = 30.0

Timings = tuple[list[float], str | None]
"""Seconds per connection, and the security mode mailwire reported (None for the peers)."""

# What each client calls the server's mode: plaintext, STARTTLS or implicit TLS.
PEER_MODES = ("none", "starttls", "implicit")


def mailwire_sync(port: int, mode: str, context: ssl.SSLContext, greeting_timeout: float,
                  iterations: int) -> Timings:
    client = mailwire.SmtpClient(HOST, port, security=mode, timeout=TIMEOUT,
                                 greeting_timeout=greeting_timeout, ssl_context=context)
    times = []
    detected = None
    for _ in range(iterations):
        started = time.perf_counter()
        info = client.connect()
        times.append(time.perf_counter() - started)
        detected = info.security.name
        client.quit()
    return times, detected


def mailwire_async(port: int, mode: str, context: ssl.SSLContext, greeting_timeout: float,
                   iterations: int) -> Timings:
    async def main() -> Timings:
        client = mailwire.AsyncSmtpClient(HOST, port, security=mode, timeout=TIMEOUT,
                                          greeting_timeout=greeting_timeout, ssl_context=context)
        times = []
        detected = None
        for _ in range(iterations):
            started = time.perf_counter()
            info = await client.connect()
            times.append(time.perf_counter() - started)
            detected = info.security.name
            await client.quit()
        return times, detected

    return asyncio.run(main())


def smtplib_connect(port: int, mode: str, context: ssl.SSLContext, greeting_timeout: float,
                    iterations: int) -> Timings:
    times = []
    for _ in range(iterations):
        started = time.perf_counter()
        if mode == "implicit":
            client: smtplib.SMTP = smtplib.SMTP_SSL(HOST, port, timeout=TIMEOUT, context=context)
        else:
            client = smtplib.SMTP(HOST, port, timeout=TIMEOUT)
        client.ehlo()
        if mode == "starttls":
            client.starttls(context=context)
            client.ehlo()
        times.append(time.perf_counter() - started)
        client.quit()
    return times, None


def aiosmtplib_connect(port: int, mode: str, context: ssl.SSLContext, greeting_timeout: float,
                       iterations: int) -> Timings:
    async def main() -> Timings:
        times = []
        for _ in range(iterations):
            started = time.perf_counter()
            client = aiosmtplib.SMTP(hostname=HOST, port=port, timeout=TIMEOUT,
                                     use_tls=mode == "implicit", start_tls=mode == "starttls",
                                     tls_context=context)
            await client.connect()
            if client.last_ehlo_response is None:
                await client.ehlo()
            times.append(time.perf_counter() - started)
            await client.quit()
        return times, None

    return asyncio.run(main())


Connect = Callable[[int, str, ssl.SSLContext, float, int], Timings]

CONNECTS: dict[str, Connect] = {
    "mailwire": mailwire_sync,
    "mailwire-async": mailwire_async,
    "smtplib": smtplib_connect,
    "aiosmtplib": aiosmtplib_connect,
}
