"""Delivery status notifications (RFC 3461), REQUIRETLS (RFC 8689), the caller's own MAIL and
RCPT parameters, and BODY=BINARYMIME: what reaches the server, and the reports it sends back.

A real Postfix generates the reports: a success notification for a delivered message asked for
with NOTIFY=SUCCESS, and a bounce for a recipient whose delivery fails after it was accepted
(an ``error:`` transport), both carrying the message's ENVID and delivered to the sender's
mailbox on the same server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from mailwire import (
    DeliveryNotificationOptions,
    MessageError,
    Recipient,
    SmtpSecurityError,
    SmtpUsageError,
)
from tests.support.clients import ClientFactory
from tests.support.postfix import PostfixServer
from tests.support.scripted import (
    Expect,
    ExpectBytes,
    ExpectData,
    Reply,
    ScriptedServerFactory,
    goodbye,
    handshake,
)

SENDER = "a@example.test"


def message(to: str, subject: str = "dsn", body: bytes = b"the body line\r\n") -> bytes:
    return (f"From: {SENDER}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n").encode() + body


@pytest.fixture(scope="module")
def reporting_postfix(postfix_factory: Callable[..., PostfixServer],
                      tmp_path_factory: pytest.TempPathFactory) -> PostfixServer:
    """Postfix where ``bounce@example.test`` is accepted, then cannot be delivered: its
    transport is a port where nothing listens, and undeliverable mail bounces at once."""
    transports = tmp_path_factory.mktemp("dsn") / "transport"
    transports.write_text("/^bounce@example\\.test$/ smtp:[127.0.0.1]:9\n")
    return postfix_factory(main_cf={"transport_maps": f"regexp:{transports}",
                                    "maximal_queue_lifetime": "0",
                                    "bounce_queue_lifetime": "0"})


@pytest.fixture(scope="module")
def postfix_without_dsn(postfix_factory: Callable[..., PostfixServer]) -> PostfixServer:
    return postfix_factory(main_cf={"smtpd_discard_ehlo_keywords": "dsn"})


def reports_to_sender(server: PostfixServer, count: int) -> list[bytes]:
    return [m.content for m in server.messages(count=count, to=SENDER, timeout=20)]


def test_a_success_notification_carries_the_envid(
    reporting_postfix: PostfixServer, make_client: ClientFactory
) -> None:
    reporting_postfix.clear()
    client = make_client(reporting_postfix.host, reporting_postfix.port, security="none")
    client.send(message("user@example.test"), notify=DeliveryNotificationOptions.ON_SUCCESS,
                envid="order 42+x")
    client.quit()
    (report,) = reports_to_sender(reporting_postfix, 1)
    assert b"Original-Envelope-Id: order 42+x" in report
    assert b"Action: delivered" in report


def test_a_bounce_carries_the_envid_and_only_the_headers(
    reporting_postfix: PostfixServer, make_client: ClientFactory
) -> None:
    reporting_postfix.clear()
    client = make_client(reporting_postfix.host, reporting_postfix.port, security="none",
                         delivery_notification_options="failure", dsn_return="headers")
    result = client.send(message("bounce@example.test", "bounced"), envid="bulk-7")
    client.quit()
    assert result.accepted == ("bounce@example.test",)
    (report,) = reports_to_sender(reporting_postfix, 1)
    assert b"Original-Envelope-Id: bulk-7" in report
    assert b"Action: failed" in report
    assert b"Subject: bounced" in report
    assert b"the body line" not in report


def test_never_asks_for_no_report(
    reporting_postfix: PostfixServer, make_client: ClientFactory
) -> None:
    reporting_postfix.clear()
    client = make_client(reporting_postfix.host, reporting_postfix.port, security="none")
    client.send(message("bounce@example.test"), notify="never")
    client.send(message("user@example.test"))
    client.quit()
    delivered = reporting_postfix.messages(count=1, to="user@example.test")
    assert len(delivered) == 1
    assert reporting_postfix.delivered(to=SENDER) == []


def test_a_server_without_dsn_refuses_or_drops_as_chosen(
    postfix_without_dsn: PostfixServer, make_client: ClientFactory
) -> None:
    postfix_without_dsn.clear()
    client = make_client(postfix_without_dsn.host, postfix_without_dsn.port, security="none")
    with pytest.raises(MessageError, match="does not offer DSN"):
        client.send(message("user@example.test"), notify="failure")
    assert client.is_connected, "a refusal before sending keeps the connection"
    client.require_dsn = False
    client.quit()
    assert client.send(message("user@example.test"), notify="failure").accepted
    client.quit()
    assert len(postfix_without_dsn.messages(count=1)) == 1


def test_the_parameters_on_the_wire(
    scripted_server: ScriptedServerFactory, caplog: pytest.LogCaptureFixture,
    make_client: ClientFactory,
) -> None:
    """ENVID and ORCPT as xtext, RET, per-recipient NOTIFY, and the caller's own parameters."""
    server = scripted_server(
        *handshake(["PIPELINING", "DSN", "8BITMIME"]),
        Expect(b"MAIL FROM:<a@example.test> RET=FULL"), Reply(250, "ok"),
        Expect(b"RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE X-TRACE=1"), Reply(250, "ok"),
        Expect(b"RCPT TO:<c@example.org> NOTIFY=NEVER ORCPT=rfc822;old+2Bc@example.org "
               b"X-TRACE=1"), Reply(250, "ok"),
        Expect(b"DATA"), Reply(354, "go"), ExpectData(), Reply(250, "queued"),
        *goodbye(),
    )
    caplog.set_level(logging.DEBUG, logger="mailwire.protocol")
    client = make_client(server.host, server.port, security="none")
    client.send(message("b@example.org"), sender=SENDER,
                recipients=["b@example.org",
                            Recipient("c@example.org", notify="never", orcpt="old+c@example.org")],
                notify="success,failure", ret="full", envid="id=1 +2",
                mail_options=["MT-PRIORITY=3"], rcpt_options=["X-TRACE=1"])
    client.quit()
    server.wait()
    mail = next(line for line in server.connections[0].received if line.startswith(b"MAIL"))
    assert b" RET=FULL" in mail and b" ENVID=id+3D1+20+2B2" in mail
    assert b" MT-PRIORITY=3" in mail


@pytest.mark.parametrize("bad", [["X=a\r\nRSET"], ["SIZE=1"], ["NOTIFY=NEVER"], ["bad param"]])
def test_own_parameters_are_checked(
    scripted_server: ScriptedServerFactory, make_client: ClientFactory, bad: list[str]
) -> None:
    server = scripted_server(*handshake(["PIPELINING", "DSN"]), *goodbye())
    client = make_client(server.host, server.port, security="none")
    with pytest.raises(SmtpUsageError):
        client.send(message("b@example.org"), mail_options=bad)
    client.quit()
    server.wait()
    assert not any(line.startswith(b"MAIL") for line in server.connections[0].received)


def test_never_with_others_is_refused() -> None:
    with pytest.raises(SmtpUsageError, match="NEVER"):
        (DeliveryNotificationOptions.NEVER | DeliveryNotificationOptions.DELAY).notify_value()


def test_require_tls_is_refused_before_sending_without_tls(
    scripted_server: ScriptedServerFactory, make_client: ClientFactory
) -> None:
    server = scripted_server(*handshake(["PIPELINING", "REQUIRETLS"]), *goodbye())
    client = make_client(server.host, server.port, security="none")
    with pytest.raises(SmtpSecurityError, match="REQUIRETLS"):
        client.send(message("b@example.org"), require_tls=True)
    client.quit()
    server.wait()
    assert not any(line.startswith(b"MAIL") for line in server.connections[0].received)


def test_require_tls_against_a_server_that_does_not_offer_it(
    postfix_tls_server: PostfixServer, make_client: ClientFactory
) -> None:
    """Postfix 3.7 offers no REQUIRETLS: over STARTTLS the message is still refused."""
    client = make_client(postfix_tls_server.host, postfix_tls_server.port,
                         security="ssl_explicit", ca_file=postfix_tls_server.ca_file)
    with pytest.raises(SmtpSecurityError, match="does not offer REQUIRETLS"):
        client.send(message("user@example.test"), require_tls=True)
    client.quit()


def test_binarymime_carries_8bit_data_to_a_server_without_8bitmime(
    scripted_server: ScriptedServerFactory, make_client: ClientFactory
) -> None:
    body = "Grüße\r\n".encode()
    raw = message("b@example.org", "eight bit", body)
    server = scripted_server(
        *handshake(["PIPELINING", "CHUNKING", "BINARYMIME"]),
        Expect(b"MAIL FROM:<a@example.test> BODY=BINARYMIME"), Expect(b"RCPT TO:"),
        Expect(b"BDAT"), ExpectBytes(len(raw)),
        Reply(250, "ok"), Reply(250, "ok"), Reply(250, "queued"), *goodbye(),
    )
    client = make_client(server.host, server.port, security="none")
    assert client.send(raw).accepted == ("b@example.org",)
    client.quit()
    server.wait()


def test_notify_and_ret_come_from_the_configuration(tmp_path: Path) -> None:
    from mailwire import SmtpClient

    config = tmp_path / "mailwire.toml"
    config.write_text('host = "smtp.example.test"\nnotify = "failure, delay"\n'
                      'dsn_return = "headers"\nrequire_dsn = false\n')
    config.chmod(0o600)
    client = SmtpClient.from_config(config)
    assert client.delivery_notification_options == (DeliveryNotificationOptions.ON_FAILURE
                                                    | DeliveryNotificationOptions.DELAY)
    assert client.dsn_return == "headers"
    assert client.require_dsn is False


@pytest.mark.parametrize("recipients", [["b@example.org", "c@example.org"],
                                        ("b@example.org", "c@example.org")])
def test_plain_address_lists_are_built_as_the_general_road_builds_them(
    recipients: list[str] | tuple[str, ...],
) -> None:
    """A list of plain addresses takes the short road (no per-recipient options to look for);
    the commands must be those of the general road, taken by ``Recipient`` items without
    options, and a client-wide NOTIFY still sends the message down the general road."""
    from mailwire import Outgoing
    from mailwire.conversation.envelope import DsnDefaults, build_envelope
    from mailwire.message.prepare import prepare
    from mailwire.protocol.capabilities import Capabilities
    from mailwire.protocol.replies import Reply as ServerReply

    capabilities = Capabilities.from_ehlo(
        ServerReply(250, ("mx.example.org", "PIPELINING", "DSN", "8BITMIME", "SIZE 100000")))
    prepared = prepare(message("b@example.org"), SENDER, list(recipients))

    def built(items: object, defaults: DsnDefaults) -> tuple[bytes, list[bytes], list[str]]:
        envelope = build_envelope(capabilities, prepared, Outgoing(b"", SENDER, items),
                                  defaults, tls=False)
        return envelope.mail, envelope.rcpts, envelope.addresses

    general = [Recipient(address) for address in recipients]
    assert built(recipients, DsnDefaults()) == built(general, DsnDefaults())
    notifying = DsnDefaults(notify=DeliveryNotificationOptions.ON_FAILURE)
    _, rcpts, _ = built(recipients, notifying)
    assert rcpts == built(general, notifying)[1]
    assert all(b" NOTIFY=FAILURE" in line for line in rcpts)
