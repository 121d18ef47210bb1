"""``SmtpClient.from_config``: settings land on a client, and the client really connects."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mailwire import (
    ConfigError,
    EncryptionProtocols,
    SecurityOptions,
    SmtpClient,
    SmtpKnownAuthenticationType,
    SocksProxy,
)
from mailwire.config import load_settings
from mailwire.devserver import Certificates, DevServer, TlsMode
from mailwire.warning_categories import InsecureSettingWarning

StartServer = Callable[..., DevServer]


def test_every_setting_is_applied(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("")
    (tmp_path / "client.pem").write_text("")
    (tmp_path / "client.key").write_text("")
    path = tmp_path / "mailwire.toml"
    path.write_text("""
host = "smtp.example.com"
port = 2525
username = "me"
password_env = "PW"
security = "ssl_implicit"
timeout = 12
greeting_timeout = 3
local_hostname = "client.example.com"
proxy = "socks5h://proxy.example:1080"
bind = "127.0.0.1:4000"
tls_versions = ["TLS13"]
ca_file = "ca.pem"
client_certificate = "client.pem"
client_key = "client.key"
insecure_skip_verify = true
allowed_mechanisms = ["PLAIN"]
allow_plaintext_credentials = true
""")
    with pytest.warns(InsecureSettingWarning, match="certificate verification is off"):
        client = SmtpClient.from_config(path, environ={"PW": "secret"})
    assert (client.host, client.port, client.username, client.password) == (
        "smtp.example.com", 2525, "me", "secret")
    assert client.security is SecurityOptions.SSL_IMPLICIT
    assert (client.timeout, client.greeting_timeout) == (12.0, 3.0)
    assert client.local_hostname == "client.example.com"
    assert client.proxy == SocksProxy("proxy.example", 1080, remote_dns=True)
    assert client.bind_endpoint == ("127.0.0.1", 4000)
    assert client.supported_encryption == EncryptionProtocols.TLS13
    assert client.ca_file == str(tmp_path / "ca.pem")
    assert client.client_certificate == (str(tmp_path / "client.pem"),
                                         str(tmp_path / "client.key"))
    assert client.dangerously_skip_certificate_verification is True
    assert client.allowed_authentication == SmtpKnownAuthenticationType.PLAIN
    assert client.allow_plaintext_credentials is True
    assert "secret" not in repr(client)


def test_unset_settings_keep_the_client_defaults(tmp_path: Path) -> None:
    path = tmp_path / "mailwire.toml"
    path.write_text('host = "h"\n')
    client = SmtpClient.from_config(path, environ={})
    assert client.port is None
    assert client.security is SecurityOptions.AUTO
    assert client.allowed_authentication == SmtpKnownAuthenticationType.ALL
    assert client.dangerously_skip_certificate_verification is False


def test_no_host_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="no SMTP host configured"):
        SmtpClient.from_config(environ={"XDG_CONFIG_HOME": str(tmp_path)})


def test_a_configured_client_sends_through_starttls_and_auth(
    smtp_server: StartServer, certificates: Certificates, tmp_path: Path
) -> None:
    server = smtp_server(tls=TlsMode.STARTTLS, credentials={"alice": "pw"})
    path = tmp_path / "app.config"
    path.write_text(f"""<configuration><system.net><mailSettings>
<smtp from="alice@example.com"><network host="127.0.0.1" port="{server.port}" userName="alice"
 password="pw" enableSsl="true" clientDomain="client.example.com"/></smtp>
</mailSettings></system.net></configuration>""")
    path.chmod(0o600)
    environ = {"MAILWIRE_CA_FILE": str(certificates.ca_file)}
    settings = load_settings(path, environ=environ)
    with SmtpClient.from_config(path, environ=environ) as client:
        assert settings.sender is not None
        result = client.send_mail(settings.sender, "bob@example.com", "s", "body")
        info = client.connection_info
    assert result.accepted == ("bob@example.com",)
    assert info is not None and info.security is SecurityOptions.SSL_EXPLICIT
    (received,) = server.wait_for_messages(1)
    assert received.helo_name == "client.example.com"
    assert received.auth_user == "alice"
