"""A flow driven one request at a time, by whoever holds the connection at the moment.

The pipeline's flow may be driven by several callers in turn (a ``send`` in one thread, then one
in another): each takes the next request, performs it and hands the result back. A request that
was handed out but not performed stays pending, so that the next driver performs it instead of
asking for a new one. ``resumable`` says which requests can be performed again after their
driver was interrupted half-way without anything being lost or done twice.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from mailwire.conversation.requests import CheckIdle, Flow, Poll, Read, Request, Sleep
from mailwire.errors import SmtpError

T = TypeVar("T")


class Stepper(Generic[T]):
    """One flow, its pending request, and what its last request gave."""

    __slots__ = ("_error", "_result", "finished", "flow", "pending", "value")

    def __init__(self, flow: Flow[T]) -> None:
        self.flow = flow
        self.pending: Request | None = None
        self.finished = False
        self.value: T | None = None
        self._result: Any = None
        self._error: SmtpError | None = None

    def next(self) -> Request | None:
        """The request to perform now; None once the flow has returned (``value``)."""
        if self.pending is not None:
            return self.pending
        if self.finished:
            return None
        error, self._error = self._error, None
        result, self._result = self._result, None
        try:
            request = self.flow.send(result) if error is None else self.flow.throw(error)
        except StopIteration as done:
            self.finished = True
            self.value = done.value
            return None
        self.pending = request
        return request

    def performed(self, result: Any) -> None:
        self.pending = None
        self._result = result

    def failed(self, error: SmtpError) -> None:
        """The pending request failed: ``error`` is thrown into the flow at its next step."""
        self.pending = None
        self._error = error

    def close(self) -> None:
        """End the flow where it stands (it sees ``GeneratorExit``)."""
        self.pending = None
        self.finished = True
        self.flow.close()


def resumable(request: Request, *, written: bool = False) -> bool:
    """Whether ``request`` may be performed again by another driver after its performer was
    interrupted: reads lose nothing (what arrives stays buffered), waits may be waited again,
    and a write whose bytes were all handed to the transport needs only its flushing awaited
    (``written``)."""
    return isinstance(request, Read | Poll | Sleep | CheckIdle) or written
