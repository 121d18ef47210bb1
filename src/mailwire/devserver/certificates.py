"""Throw-away TLS certificates for the development server, made with trustme.

Owns the files a demo or a test needs to speak TLS to a ``DevServer``: a private
certificate authority written as ``ca.pem``, a server certificate chain and key
signed by it (``server-cert.pem``, ``server-key.pem``), and the SSL contexts built
from those files.

For negative tests: ``issue_for`` makes a certificate for other host names from the
same authority (a hostname mismatch), and a second ``Certificates.generate`` into
another directory makes an unrelated authority (an unknown CA).

The files are written readable by their owner only (0600), in a folder made 0700: the key
is a key, and whoever holds the CA's file decides what a client that trusts it accepts.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Sequence
from pathlib import Path

import trustme

DEFAULT_HOSTNAMES = ("localhost", "127.0.0.1", "::1")
CA_FILE_NAME = "ca.pem"
CERT_FILE_NAME = "server-cert.pem"
KEY_FILE_NAME = "server-key.pem"


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` readable and writable by its owner only, also when it existed."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(data)


class Certificates:
    """A certificate authority and one server certificate it signed, kept as files."""

    def __init__(self, authority: trustme.CA, directory: Path, hostnames: tuple[str, ...]) -> None:
        self._authority = authority
        self.directory = directory
        self.hostnames = hostnames

    @classmethod
    def generate(
        cls, directory: Path, hostnames: Sequence[str] = DEFAULT_HOSTNAMES
    ) -> Certificates:
        """Create a new authority and a server certificate for ``hostnames``."""
        return cls._issue(trustme.CA(), directory, tuple(hostnames))

    def issue_for(self, hostnames: Sequence[str], directory: Path) -> Certificates:
        """A server certificate for other host names, signed by this same authority."""
        if directory.resolve() == self.directory.resolve():
            raise ValueError("issue_for needs its own directory; it would overwrite these files")
        return self._issue(self._authority, directory, tuple(hostnames))

    @classmethod
    def _issue(
        cls, authority: trustme.CA, directory: Path, hostnames: tuple[str, ...]
    ) -> Certificates:
        if not hostnames:
            raise ValueError("a server certificate needs at least one host name")
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        leaf = authority.issue_cert(*hostnames)
        certificates = cls(authority, directory, hostnames)
        write_private(certificates.ca_file, authority.cert_pem.bytes())
        write_private(certificates.cert_file,
                      b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
        write_private(certificates.key_file, leaf.private_key_pem.bytes())
        return certificates

    @property
    def ca_file(self) -> Path:
        return self.directory / CA_FILE_NAME

    @property
    def cert_file(self) -> Path:
        return self.directory / CERT_FILE_NAME

    @property
    def key_file(self) -> Path:
        return self.directory / KEY_FILE_NAME

    def server_context(
        self,
        minimum_version: ssl.TLSVersion | None = None,
        maximum_version: ssl.TLSVersion | None = None,
    ) -> ssl.SSLContext:
        """A server-side context presenting the server certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        if minimum_version is not None:
            context.minimum_version = minimum_version
        if maximum_version is not None:
            context.maximum_version = maximum_version
        return context

    def client_context(self) -> ssl.SSLContext:
        """A verifying client-side context that trusts only this authority."""
        return ssl.create_default_context(cafile=self.ca_file)

    def __repr__(self) -> str:
        return f"Certificates(directory={self.directory!r}, hostnames={self.hostnames!r})"
