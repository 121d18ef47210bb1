"""``load_settings`` from a .NET app.config / web.config ``<system.net><mailSettings>``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mailwire import ConfigError, SecurityOptions
from mailwire.config import load_settings

TEMPLATE = """\
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <appSettings>
    <add key="unrelated" value="ignored" />
  </appSettings>
  <system.net>
    <mailSettings>
      <smtp from="me@example.com" deliveryMethod="Network">
        <network {attributes} />
      </smtp>
    </mailSettings>
  </system.net>
</configuration>
"""
FULL = ('host="smtp.example.com" port="587" userName="me" password="p@ss" enableSsl="true" '
        'clientDomain="client.example.com" defaultCredentials="false" targetName="SMTPSVC/x"')


def app_config(folder: Path, attributes: str = FULL, template: str = TEMPLATE) -> Path:
    path = folder / "app.config"
    path.write_text(template.format(attributes=attributes), "utf-8")
    path.chmod(0o600)  # it holds a password: world-readable would warn
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    return str(caught.value)


def test_attributes_map_to_settings(tmp_path: Path) -> None:
    settings = load_settings(app_config(tmp_path), environ={})
    assert settings.host == "smtp.example.com"
    assert settings.port == 587
    assert settings.username == "me"
    assert settings.password == "p@ss"
    assert settings.security is SecurityOptions.SSL_AUTO
    assert settings.local_hostname == "client.example.com"
    assert settings.sender == "me@example.com"
    assert settings.password_source == f"{tmp_path / 'app.config'}:9: <network password>"


def test_enable_ssl_false_or_absent_is_auto_and_port_defaults_to_25(tmp_path: Path) -> None:
    for attributes in ('host="h" enableSsl="false"', 'host="h"', 'host="h" enableSsl="False"'):
        settings = load_settings(app_config(tmp_path, attributes), environ={})
        assert settings.security is SecurityOptions.AUTO
        assert settings.port == 25


def test_environment_overrides_the_xml(tmp_path: Path) -> None:
    settings = load_settings(app_config(tmp_path), environ={"MAILWIRE_SECURITY": "none",
                                                             "MAILWIRE_PORT": "2525"})
    assert (settings.security, settings.port) == (SecurityOptions.NONE, 2525)


def test_web_config_and_any_config_name(tmp_path: Path) -> None:
    path = app_config(tmp_path).rename(tmp_path / "MyApp.exe.config")
    assert load_settings(path, environ={}).host == "smtp.example.com"


def test_port_not_a_number_names_file_line_and_attribute(tmp_path: Path) -> None:
    path = app_config(tmp_path, 'host="h" port="twenty-five"')
    assert error_of(path) == (f"{path}:9: <network port>: expected a port number 1-65535, "
                              "got 'twenty-five'")


def test_unknown_attribute_suggests(tmp_path: Path) -> None:
    path = app_config(tmp_path, 'host="h" username="me"')
    assert error_of(path) == (f"{path}:9: <network username>: unknown attribute "
                              "(did you mean 'userName'?)")


def test_bad_enable_ssl(tmp_path: Path) -> None:
    path = app_config(tmp_path, 'host="h" enableSsl="sometimes"')
    assert error_of(path) == (f"{path}:9: <network enableSsl>: expected true or false, "
                              "got 'sometimes'")


def test_windows_integrated_authentication_is_refused(tmp_path: Path) -> None:
    path = app_config(tmp_path, 'host="h" defaultCredentials="true"')
    message = error_of(path)
    assert message.startswith(f"{path}:9: <network defaultCredentials>: Windows integrated")


def test_pickup_directory_delivery_is_refused(tmp_path: Path) -> None:
    path = app_config(tmp_path, 'host="h"',
                      TEMPLATE.replace('deliveryMethod="Network"',
                                       'deliveryMethod="SpecifiedPickupDirectory"'))
    assert error_of(path).startswith(f"{path}:8: <smtp deliveryMethod>: 'SpecifiedPickupDirectory'"
                                     " is not supported")


def test_missing_section(tmp_path: Path) -> None:
    path = tmp_path / "app.config"
    path.write_text("<configuration><appSettings/></configuration>")
    assert error_of(path) == f"{path}: no <system.net><mailSettings><smtp> section"


def test_missing_network_element(tmp_path: Path) -> None:
    path = tmp_path / "app.config"
    path.write_text("<configuration>\n<system.net><mailSettings>\n<smtp from='a@b'/>"
                    "</mailSettings></system.net></configuration>")
    assert error_of(path) == f"{path}:3: <smtp> has no <network> element"


def test_malformed_xml_names_the_line(tmp_path: Path) -> None:
    path = app_config(tmp_path, 'host="h"', TEMPLATE.replace("</smtp>", "</smpt>"))
    assert error_of(path) == f"{path}: malformed XML: mismatched tag (at line 10, column 9)"


def test_entities_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.config"
    path.write_text('<?xml version="1.0"?>\n<!DOCTYPE configuration [<!ENTITY big "x">]>\n'
                    "<configuration>&big;</configuration>")
    assert error_of(path) == (f"{path}:2: a document type declaration (<!DOCTYPE>) is not "
                              "allowed in a configuration file")


def test_xml_sniffed_when_the_name_says_nothing(tmp_path: Path) -> None:
    path = app_config(tmp_path).rename(tmp_path / "settings")
    assert load_settings(path, environ={}).host == "smtp.example.com"


def test_a_huge_attribute_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    """A 200 MB attribute once cost 1 GB and 24 s; any file over 1 MiB is refused unread
    (SECURITY.md, "Hostile configuration files")."""
    path = app_config(tmp_path, f'host="{"h" * (8 * 1024 * 1024)}"')
    started = time.monotonic()
    assert error_of(path) == (f"{path}: larger than 1024 KiB; a configuration file holds a few "
                              "settings")
    assert time.monotonic() - started < 1
