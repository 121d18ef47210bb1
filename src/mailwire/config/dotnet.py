"""Reading the SMTP settings of a .NET application configuration file (``app.config``,
``web.config``, ``MyApp.exe.config``), the file System.Net.Mail and Aspose.Email users already
have::

    <configuration>
      <system.net>
        <mailSettings>
          <smtp from="me@example.com" deliveryMethod="Network">
            <network host="smtp.example.com" port="587" userName="me" password="..."
                     enableSsl="true" clientDomain="client.example.com" />
          </smtp>
        </mailSettings>
      </system.net>
    </configuration>

How the attributes map:

* ``host``, ``userName``, ``password`` → ``host``, ``username``, ``password``.
* ``port`` → ``port``; when absent, 25, as .NET does.
* ``enableSsl="true"`` → ``SSL_AUTO``. .NET's EnableSsl means STARTTLS, required; SSL_AUTO
  also requires TLS and does STARTTLS on 25 and 587, and implicit TLS on 465 (which .NET
  cannot do), so every configuration that worked keeps working, never in plaintext.
* ``enableSsl="false"`` or absent → ``AUTO``: STARTTLS when the server offers it, plaintext
  only when it offers no TLS at all. .NET would stay in plaintext; mailwire never does worse
  than that, and credentials still go over plaintext only with ``allow_plaintext_credentials``.
  Set ``MAILWIRE_SECURITY=none`` to keep .NET's exact behaviour (a server whose STARTTLS
  certificate cannot be verified, say).
* ``clientDomain`` → ``local_hostname`` (the EHLO name); ``from`` → ``sender``.
* ``defaultCredentials="true"`` (Windows integrated authentication) is refused with an error;
  ``targetName`` (the Kerberos/NTLM SPN) and ``deliveryFormat`` (mailwire uses SMTPUTF8 by
  itself when a message needs it) are accepted and unused; ``deliveryMethod`` must be
  ``Network``.

XML is parsed with expat and a document type declaration is refused, so no entity can expand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

from mailwire.config.keys import FileSettings, Layer, Origin, Raw, set_key
from mailwire.config.values import boolean, suggest
from mailwire.errors import ConfigError

DOTNET_DEFAULT_PORT = "25"
SECTION = ("configuration", "system.net", "mailSettings", "smtp")
SMTP_ATTRIBUTES = {"from": "sender", "deliveryMethod": None, "deliveryFormat": None}
NETWORK_ATTRIBUTES = {"host": "host", "port": "port", "userName": "username",
                      "password": "password", "clientDomain": "local_hostname",
                      "enableSsl": None, "defaultCredentials": None, "targetName": None}


@dataclass(slots=True)
class _Element:
    tag: str
    attributes: dict[str, str]
    line: int
    children: list[_Element] = field(default_factory=list)

    def child(self, tag: str) -> _Element | None:
        return next((child for child in self.children if child.tag == tag), None)


def read_app_config(path: Path, content: bytes) -> FileSettings:
    """What the XML text ``content`` of the file ``path`` says."""
    root = _parse(path, content)
    element: _Element | None = root if root.tag == SECTION[0] else None
    for tag in SECTION[1:]:
        element = element.child(tag) if element is not None else None
    if element is None:
        raise ConfigError(f"{path}: no <system.net><mailSettings><smtp> section")
    layer: Layer = {}
    _read_attributes(path, element, SMTP_ATTRIBUTES, layer)
    method = element.attributes.get("deliveryMethod", "Network")
    if method.strip().lower() != "network":
        raise _origin(path, element, "deliveryMethod").error(
            f"{method!r} is not supported: mailwire delivers over the network (Network)")
    network = element.child("network")
    if network is None:
        raise ConfigError(f"{path}:{element.line}: <smtp> has no <network> element")
    _read_attributes(path, network, NETWORK_ATTRIBUTES, layer)
    _map_defaults(path, network, layer)
    return FileSettings(path, layer)


def _read_attributes(path: Path, element: _Element, known: dict[str, str | None],
                     layer: Layer) -> None:
    for name, value in element.attributes.items():
        if name not in known:
            raise _origin(path, element, name).error(
                f"unknown attribute{suggest(name, known)}")
        key = known[name]
        if key is not None:
            set_key(layer, key, Raw(value, _origin(path, element, name)))


def _map_defaults(path: Path, network: _Element, layer: Layer) -> None:
    attributes = network.attributes
    if "port" not in attributes:
        layer["port"] = Raw(DOTNET_DEFAULT_PORT, _origin(path, network, "port"))
    enable_ssl = attributes.get("enableSsl", "false")
    ssl_origin = _origin(path, network, "enableSsl")
    try:
        encrypted = boolean(enable_ssl)
    except ValueError as error:
        raise ssl_origin.error(str(error)) from None
    layer["security"] = Raw("ssl_auto" if encrypted else "auto", ssl_origin)
    default_credentials = _origin(path, network, "defaultCredentials")
    try:
        windows_login = boolean(attributes.get("defaultCredentials", "false"))
    except ValueError as error:
        raise default_credentials.error(str(error)) from None
    if windows_login:
        raise default_credentials.error(
            "Windows integrated authentication is not supported; set userName and password "
            "(or MAILWIRE_USERNAME and MAILWIRE_PASSWORD) instead")


def _origin(path: Path, element: _Element, attribute: str) -> Origin:
    return Origin(f"<{element.tag} {attribute}>", path, element.line, path.parent)


def _parse(path: Path, content: bytes) -> _Element:
    parser = expat.ParserCreate()
    stack: list[_Element] = []
    roots: list[_Element] = []

    def start(tag: str, attributes: dict[str, str]) -> None:
        element = _Element(tag, attributes, parser.CurrentLineNumber)
        (stack[-1].children if stack else roots).append(element)
        stack.append(element)

    def end(_tag: str) -> None:
        stack.pop()

    def refuse_doctype(*_args: object) -> None:
        raise ConfigError(f"{path}:{parser.CurrentLineNumber}: a document type declaration "
                          "(<!DOCTYPE>) is not allowed in a configuration file")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.StartDoctypeDeclHandler = refuse_doctype
    try:
        parser.Parse(content, True)
    except expat.ExpatError as error:
        reason = expat.ErrorString(error.code)
        raise ConfigError(f"{path}: malformed XML: {reason} (at line {error.lineno}, "
                          f"column {error.offset + 1})") from None
    if not roots:
        raise ConfigError(f"{path}: malformed XML: no root element")
    return roots[0]
