"""Translating OS, socket and TLS errors into mailwire's exception tree, at the I/O edge."""

from __future__ import annotations

import socket
import ssl

from mailwire.errors import (
    ConnectionLostError,
    SmtpConnectionError,
    SmtpError,
    SmtpSecurityError,
    SmtpTimeoutError,
    TlsNotSpokenError,
)

_NOT_TLS_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST",
     "UNKNOWN_PROTOCOL", "WRONG_SSL_VERSION", "UNSUPPORTED_PROTOCOL"}
)


def translate(error: BaseException, phase: str, where: str, timeout: float) -> SmtpError:
    """The mailwire error for an OS-level failure during ``phase`` talking to ``where``."""
    if isinstance(error, SmtpError):
        return error
    if isinstance(error, TimeoutError | socket.timeout):
        return SmtpTimeoutError(phase, timeout)
    if isinstance(error, ssl.SSLCertVerificationError):
        return SmtpSecurityError(
            f"the certificate of {where} failed verification: {error.verify_message}"
        )
    if isinstance(error, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return ConnectionLostError(f"the server closed the connection during {phase}")
    if isinstance(error, ssl.SSLError):
        if error.reason in _NOT_TLS_REASONS:
            return TlsNotSpokenError(
                f"{where} did not answer the TLS handshake with TLS ({error.reason}); "
                "is this a plaintext or STARTTLS port?"
            )
        return SmtpSecurityError(f"TLS failed during {phase} with {where}: {error.reason or error}")
    if isinstance(error, socket.gaierror):
        return SmtpConnectionError(f"cannot resolve {where}: {error.strerror}")
    if isinstance(error, ConnectionRefusedError):
        return SmtpConnectionError(f"connection to {where} refused")
    if isinstance(error, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return ConnectionLostError(f"the connection to {where} was reset during {phase}")
    if isinstance(error, OSError):
        return SmtpConnectionError(f"{phase} with {where} failed: {error.strerror or error}")
    return SmtpConnectionError(f"{phase} with {where} failed: {error}")
