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
from typing import NoReturn

from mailwire.errors import MessageError

# A local part or domain longer than this is invalid anyway (64 and 255 octets); stop keeping it.
_KEEP_AT_MOST = 1024

_TOKEN = re.compile(
    r"""
    [ \t\r\n]*+
    (?:
      (?P<quoted>"(?:[^"\\]++|\\.)*+")
    | (?P<atom>[^\x00-\x20\x7f"(),.:;<>@\[\]\\]++)
    | (?P<literal>\[(?:[^\[\]\\]++|\\.)*+\])
    | (?P<special>,++|[.:;<>@])
    | (?P<comment>\()
    | (?P<end>\Z)
    )
    """,
    re.VERBOSE | re.DOTALL,
)
# The common case, read by one possessive pattern: bare addresses and "Name Words <address>"
# items with plain atoms, separated by single commas. Anything else goes to the full reader;
# both read these values alike.
_ATEXT = r'[^\x00-\x20\x7f"(),.:;<>@\[\]\\]'
_DOT_ATOM = rf"{_ATEXT}++(?:\.{_ATEXT}++)*+"
_ADDRESS = rf"{_DOT_ATOM}@{_DOT_ATOM}"
_ITEM = (rf"(?>[ \t]*+(?:{_ATEXT}++(?:[ \t]++{_ATEXT}++)*+[ \t]*+<{_ADDRESS}>|<{_ADDRESS}>"
         rf"|{_ADDRESS})[ \t]*+)")
_SIMPLE_LIST = re.compile(rf"{_ITEM}(?:,{_ITEM})*+")
_COMMENT_PART = re.compile(r"[^()\\]++|\\.|\(++|\)++", re.DOTALL)


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
    if _SIMPLE_LIST.fullmatch(value):
        return [_address_in(item) for item in value.split(",")]
    try:
        return _read(value)
    except _Invalid as invalid:
        start = max(0, invalid.position - 30)
        excerpt = value[start : invalid.position + 30]
        raise MessageError(
            f"{what} is not a valid address list: {invalid.reason} "
            f"(at character {invalid.position}: {excerpt!r}); envelope addresses are only "
            "taken from headers a strict reader agrees on"
        ) from None


def _address_in(item: str) -> str:
    """The address of one item of a value ``_SIMPLE_LIST`` matched."""
    if "<" in item:
        return item[item.index("<") + 1 : item.index(">")]
    return item.strip(" \t")


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


# Where the reader stands: what the next token may be.
_START = 0  # an address, a group, an empty element, or the ';' that closes a group
_WORDS = 1  # after words and dots: a display name, or a local part if '@' follows
_DOMAIN = 2  # after '@': the first label or a domain literal
_DOMAIN_END = 3  # after a label or literal: '.', or what ends the address
_LABEL = 4  # after a '.' in a domain: a label
_AFTER_ADDRESS = 5  # after '>': what ends the address
_AFTER_GROUP = 6  # after the ';' that closed a group: ',' or the end

_SEPARATORS = frozenset({",", "end"})


def _read(value: str) -> list[str]:
    """The address-list grammar as one flat state machine over the tokens (white space and
    comments skipped, a run of commas read as one), so that each token costs one match."""
    found: list[str] = []
    state = _START
    in_group = angle = False
    parts: list[str] = []  # the local part's words and dots, then the domain's labels
    kept = 0  # characters in parts; beyond _KEEP_AT_MOST the address is invalid anyway
    last_word = dot_atom = False
    local = ""
    position = 0
    match_token = _TOKEN.match
    while True:
        match = match_token(value, position)
        if match is None:
            _refuse_character(value, position)
        kind = match.lastgroup
        assert kind is not None
        at = match.start(kind)
        if kind == "comment":
            position = _skip_comment(value, at)
            continue
        text = match.group(kind)
        position = match.end()
        if kind == "special":
            kind = text[0]
        elif kind in ("quoted", "atom"):
            kind = "word"

        if state == _START:
            if kind == ",":
                continue
            if kind == "end":
                return found
            if kind == ";" and in_group:
                in_group, state = False, _AFTER_GROUP
                continue
            if kind == "<":
                angle, state, parts, kept, last_word, dot_atom = True, _WORDS, [], 0, False, True
                continue
            if kind != "word":
                raise _Invalid(f"{text!r} where an address should start", at)
            angle, state, parts, kept, last_word, dot_atom = False, _WORDS, [text], len(text), \
                True, True
        elif state == _WORDS:
            if kind in ("word", "."):
                is_word = kind == "word"
                if is_word == last_word:
                    dot_atom = False
                last_word = is_word
                kept += len(text)
                if dot_atom and kept <= _KEEP_AT_MOST:
                    parts.append(text)
            elif kind == "@":
                if angle and not parts:
                    raise _Invalid("source routes (<@host:...>) are not supported", at)
                if not dot_atom or not last_word:
                    raise _Invalid("the words before '@' are not a local part (quote a display "
                                   "name and put the address in <...>)", at)
                if kept > _KEEP_AT_MOST:
                    raise _Invalid("the local part is far too long", at)
                local, parts, kept, state = "".join(parts), [], 0, _DOMAIN
            elif angle:
                raise _Invalid("<...> does not hold local-part@domain", at)
            elif kind == "<":
                angle, parts, kept, last_word, dot_atom = True, [], 0, False, True
            elif kind == ":":
                if in_group:
                    raise _Invalid("a group inside a group", at)
                in_group, state = True, _START
            else:
                raise _Invalid("a name with no <address> (or an address with no '@')", at)
        elif state in (_DOMAIN, _LABEL):
            if kind == "word" and text[0] != '"':
                kept += len(text)
                if kept <= _KEEP_AT_MOST:
                    parts.append(text)
                state = _DOMAIN_END
            elif kind == "literal" and state == _DOMAIN:
                parts.append(text)
                kept += len(text)
                state = _DOMAIN_END
            else:
                raise _Invalid("a domain must follow '@'" if state == _DOMAIN
                               else "a domain label must follow '.'", at)
        elif state == _DOMAIN_END:
            if kind == "." and parts[-1][:1] != "[":
                state = _LABEL
                continue
            if kept > _KEEP_AT_MOST:
                raise _Invalid("the domain is far too long", at)
            address = f"{local}@{'.'.join(parts)}"
            if angle:
                if kind != ">":
                    raise _Invalid("<...> is not closed after the domain", at)
                found.append(address)
                state = _AFTER_ADDRESS
                continue
            if kind == "<":
                raise _Invalid("an address followed by <...>: a display name that holds '@' "
                               "must be quoted", at)
            found.append(address)
            state = _separator(kind, text, at, in_group)
            if kind == "end":
                return found
            if kind == ";":
                in_group = False
        elif state == _AFTER_ADDRESS:
            state = _separator(kind, text, at, in_group)
            if kind == "end":
                return found
            if kind == ";":
                in_group = False
        else:  # _AFTER_GROUP
            if kind == "end":
                return found
            if kind != ",":
                raise _Invalid(f"{text!r} after a group", at)
            state = _START


def _separator(kind: str, text: str, at: int, in_group: bool) -> int:
    """The state after what follows an address: a comma, the end, or a group's ';'."""
    if kind in _SEPARATORS:
        return _START
    if kind == ";":
        if in_group:
            return _AFTER_GROUP
        raise _Invalid("';' outside a group: separate addresses with ','", at)
    raise _Invalid(f"{text!r} after an address: separate addresses with ','", at)


def _refuse_character(value: str, position: int) -> NoReturn:
    while value[position] in " \t\r\n":
        position += 1
    character = value[position]
    if character == '"':
        raise _Invalid("a quoted string is not closed", position)
    if character == "[":
        raise _Invalid("a domain literal is not closed", position)
    raise _Invalid(f"unexpected character {character!r}", position)
