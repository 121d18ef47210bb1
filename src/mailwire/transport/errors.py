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

HANDSHAKE_PHASE = "TLS handshake"
_NOT_TLS_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST",
     "UNKNOWN_PROTOCOL", "WRONG_SSL_VERSION"}
)
# A TLS server and this client found no protocol version both allow: the server spoke TLS, so
# this is no reason to try plaintext (UNSUPPORTED_PROTOCOL: the server chose a version the
# client excludes; the alerts: the peer found none it accepts).
_VERSION_MISMATCH_REASONS = frozenset(
    {"UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION", "NO_PROTOCOLS_AVAILABLE",
     "UNSUPPORTED_SSL_VERSION"}
)


def translate(error: BaseException, phase: str, where: str, timeout: float) -> SmtpError:
    """The mailwire error for an OS-level failure during ``phase`` talking to ``where``."""
    if isinstance(error, SmtpError):
        return error
    if isinstance(error, TimeoutError | socket.timeout):
        return SmtpTimeoutError(phase, timeout, where)
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
        if error.reason in _VERSION_MISMATCH_REASONS:
            return SmtpSecurityError(
                f"TLS failed during {phase} with {where}: no TLS protocol version that both "
                f"sides allow ({error.reason}); see supported_encryption"
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


def translate_handshake(error: BaseException, where: str, timeout: float,
                        offered: str) -> SmtpError:
    """The mailwire error for a failed TLS handshake; ``offered`` names the client's versions.

    A server that ends the connection in the middle of the handshake (asyncio servers do so
    without sending their alert when they find no version or cipher in common) did not let
    TLS be set up: that is a security failure, not a lost connection to retry.
    """
    translated = translate(error, HANDSHAKE_PHASE, where, timeout)
    if isinstance(translated, ConnectionLostError):
        return SmtpSecurityError(
            f"{where} ended the connection during the TLS handshake; it may accept none of the "
            f"TLS versions or ciphers offered ({offered})"
        )
    if isinstance(error, ssl.SSLError) and error.reason in _VERSION_MISMATCH_REASONS:
        return SmtpSecurityError(f"{translated} (offered: {offered})")
    return translated
