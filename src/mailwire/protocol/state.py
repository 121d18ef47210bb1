"""Where one SMTP connection stands: a small state machine with a table of transitions.

Rules it keeps:
- The state moves only through ``ConnectionState.move(event)``, and only along ``TRANSITIONS``;
  anything else is a bug in mailwire and raises ``StateError``.
- ``BROKEN`` is where a connection goes when nobody can say any more what the server has seen
  and what it will answer: an exception of any kind (cancellation included) left a command
  unanswered or a message half written. No event leads out of it but ``CLOSED``: the only way on
  is a new connection (``CLOSED``, then ``OPEN``).
- ``READY`` is the only state in which a new command may start: nothing is owed by either side.
- ``BUSY`` counts the messages in flight (written, not yet answered to the end) and the single
  commands awaiting their reply; it goes back to ``READY`` when both are zero.

    CLOSED --open--> OPENING --ready--> READY <--idle-- BUSY   (OPENING counts its own commands)
                                          |  --begin--> BUSY (messages or commands in flight)
    any live state --closing--> CLOSING (QUIT sent, or the server said 421)
    any state --fail--> BROKEN          CLOSING, BROKEN, READY --closed--> CLOSED
"""

from __future__ import annotations

from enum import Enum


class Phase(Enum):
    CLOSED = "closed"
    OPENING = "opening"
    READY = "ready"
    BUSY = "busy"
    CLOSING = "closing"
    BROKEN = "broken"


class Event(Enum):
    OPEN = "open"
    READY = "ready"
    BEGIN = "begin"
    IDLE = "idle"
    CLOSING = "closing"
    FAIL = "fail"
    CLOSED = "closed"


_LIVE = (Phase.OPENING, Phase.READY, Phase.BUSY)

TRANSITIONS: dict[Phase, dict[Event, Phase]] = {
    Phase.CLOSED: {Event.OPEN: Phase.OPENING, Event.FAIL: Phase.BROKEN},
    Phase.OPENING: {Event.READY: Phase.READY, Event.BEGIN: Phase.OPENING,
                    Event.IDLE: Phase.OPENING},
    Phase.READY: {Event.BEGIN: Phase.BUSY, Event.CLOSED: Phase.CLOSED},
    Phase.BUSY: {Event.BEGIN: Phase.BUSY, Event.IDLE: Phase.READY},
    Phase.CLOSING: {Event.CLOSED: Phase.CLOSED, Event.CLOSING: Phase.CLOSING},
    Phase.BROKEN: {Event.CLOSED: Phase.CLOSED, Event.FAIL: Phase.BROKEN},
}
for _phase in _LIVE:
    TRANSITIONS[_phase][Event.CLOSING] = Phase.CLOSING
for _phase in Phase:
    TRANSITIONS[_phase].setdefault(Event.FAIL, Phase.BROKEN)


class StateError(RuntimeError):
    """mailwire tried a transition its own table forbids: a bug, never the server's fault."""


class ConnectionState:
    """The phase of one connection, the messages and commands in flight, and why it broke."""

    __slots__ = ("broken_by", "commands", "messages", "phase")

    def __init__(self) -> None:
        self.phase = Phase.CLOSED
        self.messages = 0
        self.commands = 0
        self.broken_by: BaseException | None = None

    def move(self, event: Event) -> Phase:
        try:
            self.phase = TRANSITIONS[self.phase][event]
        except KeyError:
            raise StateError(f"no transition from {self.phase.name} on {event.name}") from None
        return self.phase

    # -- the events, by name --------------------------------------------------------------------

    def open(self) -> None:
        self.move(Event.OPEN)

    def ready(self) -> None:
        self.move(Event.READY)

    def begin_command(self) -> None:
        self.commands += 1
        self.move(Event.BEGIN)

    def end_command(self) -> None:
        self.commands -= 1
        self._idle_if_quiet()

    def begin_message(self) -> None:
        self.messages += 1
        if self.phase is not Phase.BUSY:  # BUSY --begin--> BUSY: nothing to look up
            self.move(Event.BEGIN)

    def end_message(self) -> None:
        self.messages -= 1
        self._idle_if_quiet()

    def closing(self) -> None:
        """QUIT was sent or the server announced it is closing (421): no new command."""
        if self.phase is not Phase.BROKEN:
            self.move(Event.CLOSING)

    def fail(self, cause: BaseException | None = None) -> None:
        if self.phase is Phase.CLOSED:
            return
        if self.broken_by is None:
            self.broken_by = cause
        self.move(Event.FAIL)

    def closed(self) -> None:
        if self.phase is Phase.CLOSED:
            return
        if self.phase in (Phase.OPENING, Phase.BUSY):
            self.fail()
        self.move(Event.CLOSED)

    # -- questions ------------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """A new command may start now."""
        return self.phase is Phase.READY

    @property
    def open_for_commands(self) -> bool:
        """More commands may be written (pipelined behind those in flight)."""
        return self.phase in (Phase.READY, Phase.BUSY)

    @property
    def live(self) -> bool:
        """The connection is open and its protocol state is known."""
        return self.phase in _LIVE

    @property
    def quiet(self) -> bool:
        """Nothing is in flight: nothing is owed by either side."""
        return self.messages == 0 and self.commands == 0

    def _idle_if_quiet(self) -> None:
        if self.phase is Phase.BUSY and self.quiet:
            self.move(Event.IDLE)

    def __repr__(self) -> str:
        return (f"<ConnectionState {self.phase.name} messages={self.messages} "
                f"commands={self.commands}>")
