"""What an error reporter could record of an exception, searched for secrets; and connections
that fail on purpose at the n-th step of AUTH.

Error reporters (Sentry, Rollbar, rich tracebacks, ``traceback.TracebackException(
capture_locals=True)``) store the ``repr`` of every local variable of every frame of a
traceback, recursing into containers. ``find`` does that and more, for every exception in the
chain (causes and contexts, suppressed or not), in the frames of mailwire's own code:

- every value's ``repr`` and, for text and bytes, the value itself;
- the items of dicts, lists, tuples and sets; the fields of dataclasses;
- the attributes (``__dict__`` and slots) of mailwire's own objects, whatever their ``repr``,
  so a secret hidden behind a tidy ``repr`` is still found, with one exception: the client
  fronts (``ClientOptions``) hold the password attribute the caller set, and only their
  ``repr`` (tested to hide it) is searched;
- the locals of mailwire generators that are suspended in those frames (a SASL mechanism
  waiting for the server).

Objects of other libraries count by their ``repr`` only. ``Secret`` and ``SecretBytes`` count by
their ``repr``: that is the defence under test.
"""

from __future__ import annotations

import base64
import dataclasses
import types
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import mailwire
from mailwire.auth import Secret, SecretBytes
from mailwire.errors import SmtpTimeoutError
from mailwire.options import ClientOptions
from mailwire.transport.async_connection import AsyncConnection
from mailwire.transport.sync_connection import SyncConnection

__all__ = ["AuthFault", "FailingAsyncConnection", "FailingSyncConnection", "find", "forms_of"]

MAILWIRE = str(Path(mailwire.__file__).resolve().parent)
_MAX_DEPTH = 8


def forms_of(*secrets: str | bytes) -> list[bytes]:
    """Each secret as UTF-8 and in base64: how it could show."""
    forms = []
    for secret in secrets:
        raw = secret.encode() if isinstance(secret, str) else secret
        forms += [raw, base64.b64encode(raw)]
    return forms


def find(error: BaseException, forms: Iterable[bytes],
         code_under: tuple[str, ...] = (MAILWIRE,)) -> list[str]:
    """Where any of ``forms`` shows in what a reporter could record of ``error``."""
    return _Search(list(forms), code_under).run(error)


class _Search:
    def __init__(self, forms: list[bytes], code_under: tuple[str, ...]) -> None:
        self.forms = forms
        self.code_under = code_under
        self.seen: set[int] = set()
        self.found: list[str] = []

    def run(self, error: BaseException) -> list[str]:
        for exception in _chain(error):
            name = type(exception).__name__
            self.check_text(f"{name} str", str(exception))
            self.walk(f"{name}.args", exception.args, 0)
            self.walk(f"{name}.__dict__", vars(exception), 0)
            traceback = exception.__traceback__
            while traceback is not None:
                self.frame(f"{name} frame", traceback.tb_frame)
                traceback = traceback.tb_next
        return self.found

    def ours(self, frame: types.FrameType) -> bool:
        return str(Path(frame.f_code.co_filename).resolve()).startswith(self.code_under)

    def frame(self, where: str, frame: types.FrameType) -> None:
        if not self.ours(frame):
            return
        for name, value in frame.f_locals.items():
            self.walk(f"{where} {frame.f_code.co_qualname}: {name}", value, 0)

    def check_text(self, where: str, text: str | bytes) -> None:
        data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
        for form in self.forms:
            if form in data:
                self.found.append(f"{where}: {form!r}")

    def walk(self, where: str, value: Any, depth: int) -> None:
        if id(value) in self.seen or depth > _MAX_DEPTH:
            return
        self.seen.add(id(value))
        try:
            shown = repr(value)
        except Exception as error:  # a repr that fails shows nothing
            shown = f"<repr failed: {type(error).__name__}>"
        self.check_text(f"{where} (repr)", shown)
        if isinstance(value, Secret | SecretBytes):
            return
        if isinstance(value, str | bytes | bytearray | memoryview):
            self.check_text(where, value if isinstance(value, str) else bytes(value))
            return
        for label, item in self.parts(value):
            self.walk(f"{where}.{label}", item, depth + 1)

    def parts(self, value: Any) -> Iterator[tuple[str, Any]]:
        if isinstance(value, Mapping):
            for key, item in list(value.items()):
                yield f"[{key!r}]", item
                yield "<key>", key
        elif isinstance(value, list | tuple | set | frozenset):
            yield from ((f"[{index}]", item) for index, item in enumerate(value))
        elif isinstance(value, types.GeneratorType | types.CoroutineType
                        | types.AsyncGeneratorType):
            frame = getattr(value, "gi_frame", None) or getattr(value, "cr_frame", None) \
                or getattr(value, "ag_frame", None)
            if frame is not None and self.ours(frame):
                yield from ((f"<{frame.f_code.co_qualname}>:{name}", item)
                            for name, item in frame.f_locals.items())
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            yield from ((field.name, getattr(value, field.name, None))
                        for field in dataclasses.fields(value))
        elif _is_ours(value) and not isinstance(value, ClientOptions):
            yield from vars(value).items() if hasattr(value, "__dict__") else ()
            for klass in type(value).__mro__:
                for slot in getattr(klass, "__slots__", ()):
                    if hasattr(value, slot):
                        yield slot, getattr(value, slot)


def _is_ours(value: Any) -> bool:
    return type(value).__module__.startswith("mailwire.") and not isinstance(value, type)


def _chain(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    pending = [error]
    while pending:
        current = pending.pop()
        if current in found:
            continue
        found.append(current)
        pending += [linked for linked in (current.__cause__, current.__context__) if linked]
    return found


class AuthFault:
    """Raises a timeout at the ``at``-th read or write of the AUTH phase (1 = the AUTH line)."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.count = 0

    @property
    def fired(self) -> bool:
        return self.count >= self.at

    def tick(self, phase: str, timeout: float) -> None:
        if phase != "AUTH":
            return
        self.count += 1
        if self.count == self.at:
            raise SmtpTimeoutError(phase, timeout)


class FailingSyncConnection(SyncConnection):
    def __init__(self, fault: AuthFault) -> None:
        super().__init__()
        self.fault = fault

    def send(self, data: bytes, phase: str, timeout: float) -> None:
        self.fault.tick(phase, timeout)
        super().send(data, phase, timeout)

    def receive(self, phase: str, timeout: float) -> bytes:
        self.fault.tick(phase, timeout)
        return super().receive(phase, timeout)


class FailingAsyncConnection(AsyncConnection):
    """Writes are counted where they are handed to the transport; reads all go through
    ``receive`` (none is taken from the buffer without it), where their phase is known."""

    def __init__(self, fault: AuthFault) -> None:
        super().__init__()
        self.fault = fault

    def write_now(self, data: bytes, phase: str, timeout: float) -> None:
        self.fault.tick(phase, timeout)
        super().write_now(data, phase, timeout)

    def read_now(self) -> bytes | None:
        return None

    async def receive(self, phase: str, timeout: float) -> bytes:
        self.fault.tick(phase, timeout)
        return await super().receive(phase, timeout)
