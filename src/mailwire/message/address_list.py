"""Reading the addresses in an address-list header field (RFC 5322 3.4, RFC 6532), strictly and
in one pass.

The envelope taken from a message's headers is exactly the list of addr-specs a strict reader
sees: anything a strict reader would not read as an address list (``victim@x <evil@y>``, an
unclosed quote or comment, a ``;`` outside a group, two addresses without a comma) is refused
rather than guessed at. Comments, quoted strings and domain literals are read by possessive
patterns and nesting is counted, so the time is linear in the length of the value whatever it
holds, and nothing recurses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mailwire.errors import MessageError

# A local part or domain longer than this is invalid anyway (64 and 255 octets); stop keeping it.
_KEEP_AT_MOST = 1024

_TOKEN = re.compile(
    r"""
      (?P<space>[ \t\r\n]++)
    | (?P<quoted>"(?:[^"\\]++|\\.)*+")
    | (?P<atom>[^\x00-\x20\x7f"(),.:;<>@\[\]\\]++)
    | (?P<literal>\[(?:[^\[\]\\]++|\\.)*+\])
    | (?P<special>[,.:;<>@])
    | (?P<comment>\()
    """,
    re.VERBOSE | re.DOTALL,
)
_COMMENT_PART = re.compile(r"[^()\\]++|\\.|\(++|\)++", re.DOTALL)

_WORD = frozenset({"quoted", "atom"})


class _Invalid(Exception):
    def __init__(self, reason: str, position: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.position = position


def addresses(value: str, what: str) -> list[str]:
    """The addr-specs in ``value``, an address-list field's unfolded value, in order.

    Raises ``MessageError`` naming ``what`` (``"the To header field"``) when ``value`` is not
    an address list.
    """
    try:
        return _Reader(value).read()
    except _Invalid as invalid:
        start = max(0, invalid.position - 30)
        excerpt = value[start : invalid.position + 30]
        raise MessageError(
            f"{what} is not a valid address list: {invalid.reason} "
            f"(at character {invalid.position}: {excerpt!r}); envelope addresses are only "
            "taken from headers a strict reader agrees on"
        ) from None


def _tokens(value: str) -> Iterator[tuple[str, str, int]]:
    """(kind, text, position) for every token; white space and comments are left out."""
    position, end = 0, len(value)
    while position < end:
        match = _TOKEN.match(value, position)
        if match is None:
            character = value[position]
            if character == '"':
                raise _Invalid("a quoted string is not closed", position)
            if character == "[":
                raise _Invalid("a domain literal is not closed", position)
            raise _Invalid(f"unexpected character {character!r}", position)
        kind = match.lastgroup
        assert kind is not None
        if kind == "comment":
            position = _skip_comment(value, position)
            continue
        if kind != "space":
            text = match.group()
            yield (text if kind == "special" else kind), text, position
        position = match.end()
    yield "end", "", end


def _skip_comment(value: str, start: int) -> int:
    """The position after the comment (nested comments included) that starts at ``start``."""
    depth, position, end = 0, start, len(value)
    while position < end:
        match = _COMMENT_PART.match(value, position)
        assert match is not None  # every character starts one of its alternatives
        text = match.group()
        if text[0] == "(":
            depth += len(text)
        elif text[0] == ")":
            if len(text) >= depth:
                return position + depth
            depth -= len(text)
        position = match.end()
    raise _Invalid("a comment is not closed", start)


class _Reader:
    """The address-list grammar as a state machine over the tokens."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.found: list[str] = []
        self.in_group = False

    def read(self) -> list[str]:
        tokens = _tokens(self.value)
        kind, text, position = next(tokens)
        while kind != "end":
            if kind == ",":
                kind, text, position = next(tokens)
                continue
            if kind == ";" and self.in_group:
                self.in_group = False
                kind, text, position = self._after(tokens, ("end", ","), "after a group")
                continue
            kind, text, position = self._mailbox_or_group(tokens, kind, text, position)
        return self.found

    def _mailbox_or_group(self, tokens: Iterator[tuple[str, str, int]], kind: str, text: str,
                          position: int) -> tuple[str, str, int]:
        """Read from the first token of a mailbox or a group to the token after it."""
        if kind == "<":
            return self._angle_address(tokens, position)
        if kind not in _WORD:
            raise _Invalid(f"{text!r} where an address should start", position)
        words = _Words()
        while kind in _WORD or kind == ".":
            words.add(kind, text)
            kind, text, position = next(tokens)
        if kind == "@":
            local = words.local_part(position)
            domain, kind, text, position = self._domain(tokens)
            self.found.append(f"{local}@{domain}")
            if kind == "<":
                raise _Invalid("an address followed by <...>: a display name that holds '@' "
                               "must be quoted", position)
            return self._check_separator(kind, text, position)
        if kind == "<":
            return self._angle_address(tokens, position)
        if kind == ":":
            if self.in_group:
                raise _Invalid("a group inside a group", position)
            self.in_group = True
            return next(tokens)
        raise _Invalid("a name with no <address> (or an address with no '@')", position)

    def _angle_address(self, tokens: Iterator[tuple[str, str, int]],
                       start: int) -> tuple[str, str, int]:
        kind, text, position = next(tokens)
        if kind == "@":
            raise _Invalid("source routes (<@host:...>) are not supported", position)
        words = _Words()
        while kind in _WORD or kind == ".":
            words.add(kind, text)
            kind, text, position = next(tokens)
        if kind != "@":
            raise _Invalid("<...> does not hold local-part@domain", start)
        local = words.local_part(position)
        domain, kind, text, position = self._domain(tokens)
        if kind != ">":
            raise _Invalid("<...> is not closed after the domain", position)
        self.found.append(f"{local}@{domain}")
        kind, text, position = next(tokens)
        return self._check_separator(kind, text, position)

    def _domain(self, tokens: Iterator[tuple[str, str, int]]) -> tuple[str, str, str, int]:
        """The domain after '@', and the token after it."""
        kind, text, position = next(tokens)
        if kind == "literal":
            after_kind, after_text, after_position = next(tokens)
            return text, after_kind, after_text, after_position
        parts: list[str] = []
        kept = 0
        while True:
            if kind != "atom":
                raise _Invalid("a domain must follow '@'" if not parts
                               else "a domain label must follow '.'", position)
            kept += len(text)
            if kept <= _KEEP_AT_MOST:
                parts.append(text)
            kind, text, position = next(tokens)
            if kind != ".":
                break
            kind, text, position = next(tokens)
        if kept > _KEEP_AT_MOST:
            raise _Invalid("the domain is far too long", position)
        return ".".join(parts), kind, text, position

    def _check_separator(self, kind: str, text: str, position: int) -> tuple[str, str, int]:
        """After a mailbox: a comma, the end, or (in a group) the ';' that closes it."""
        if kind in ("end", ",") or (kind == ";" and self.in_group):
            return kind, text, position
        if kind == ";":
            raise _Invalid("';' outside a group: separate addresses with ','", position)
        raise _Invalid(f"{text!r} after an address: separate addresses with ','", position)

    def _after(self, tokens: Iterator[tuple[str, str, int]], allowed: tuple[str, ...],
               where: str) -> tuple[str, str, int]:
        kind, text, position = next(tokens)
        if kind not in allowed:
            raise _Invalid(f"{text!r} {where}", position)
        return kind, text, position


class _Words:
    """The words and dots before '@' or '<': a local part if they form word(.word)*, else a
    display name (which may hold dots: ``John Q. Public``)."""

    __slots__ = ("dot_atom", "kept", "last", "parts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.kept = 0
        self.last = ""
        self.dot_atom = True

    def add(self, kind: str, text: str) -> None:
        is_dot = kind == "."
        if (is_dot and self.last != "word") or (not is_dot and self.last == "word"):
            self.dot_atom = False
        self.last = "." if is_dot else "word"
        self.kept += len(text)
        if self.dot_atom and self.kept <= _KEEP_AT_MOST:
            self.parts.append(text)

    def local_part(self, position: int) -> str:
        if not self.dot_atom or self.last != "word":
            raise _Invalid("the words before '@' are not a local part (quote a display name "
                           "and put the address in <...>)", position)
        if self.kept > _KEEP_AT_MOST:
            raise _Invalid("the local part is far too long", position)
        return "".join(self.parts)
