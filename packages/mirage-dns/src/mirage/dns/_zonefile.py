"""Zone files in the master format of RFC 1035 section 5 (with BIND's extensions).

Supported: ``$ORIGIN``, ``$TTL``, ``$INCLUDE``, ``$GENERATE``; relative names and
``@``; an omitted owner (the previous one), TTL and class in either order; parentheses
across lines; comments; quoted strings and ``\\X``/``\\DDD`` escapes; TTL units
(``1h30m``); the generic ``\\# len hex`` form of RFC 3597 for any type.

Every error is a :class:`ZoneError` naming the file, the line and the reason.
"""

from __future__ import annotations

import contextlib
import gc
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ._consts import Class, RRType, class_from_text, type_from_text
from ._errors import ZoneError
from ._fields import Token, parse_ttl
from ._message import RR
from ._name import Name, NameError_
from ._rdata import AAAA, CNAME, MX, NS, PTR, SOA, A, Rdata, rdata_from_text

__all__ = ["parse_zone", "read_zone", "zone_to_text"]


@dataclass(frozen=True, slots=True)
class _Line:
    """A logical line of a zone file: first line number, whether the owner is blank, tokens."""

    number: int
    blank_owner: bool
    tokens: list[Token]


_Simple = tuple[int, bool, list[str]]
"""A line without quotes, parentheses, comments or escapes: number, blank owner, words."""


_SPECIAL = frozenset('"();\\')


def _lex(text: str, filename: str) -> Iterator[_Line | _Simple]:
    """Split ``text`` into logical lines (parentheses joined) of tokens.

    Lines without quotes, parentheses, comments or escapes (most lines of a large
    zone) take a fast path through ``str.split``; the others are scanned by
    :func:`_lex_slow`, joined with the lines that follow until parentheses close.
    """
    pending: list[str] = []
    first = 1
    for number, line in enumerate(text.split("\n"), start=1):
        if not pending and _SPECIAL.isdisjoint(line):
            words = line.split()
            if words:
                yield (number, line[0] in " \t", words)
            continue
        if not pending:
            first = number
        pending.append(line)
        # a group is complete when its parentheses balance outside quotes and comments
        if _balanced("\n".join(pending)):
            yield from _lex_slow("\n".join(pending), filename, first)
            pending = []
    if pending:
        yield from _lex_slow("\n".join(pending), filename, first)


def _balanced(text: str) -> bool:
    depth = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            j = text.find('"', i + 1)
            while j > 0 and text[j - 1] == "\\" and not _even_backslashes(text, j):
                j = text.find('"', j + 1)
            if j < 0:
                return True  # an unterminated string: let the scanner report it
            i = j + 1
            continue
        if c == ";":
            j = text.find("\n", i)
            if j < 0:
                break
            i = j
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        i += 1
    return depth <= 0


def _even_backslashes(text: str, quote: int) -> bool:
    count = 0
    k = quote - 1
    while k >= 0 and text[k] == "\\":
        count += 1
        k -= 1
    return count % 2 == 0


def _lex_slow(text: str, filename: str, first_line: int = 1) -> Iterator[_Line]:
    """The full scanner: quotes, escapes, comments and parentheses."""
    depth = 0
    tokens: list[Token] = []
    start_line = first_line
    blank_owner = False
    line = first_line
    at_line_start = True
    open_line = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            if depth == 0:
                if tokens:
                    yield _Line(start_line, blank_owner, tokens)
                tokens = []
                at_line_start = True
            line += 1
            i += 1
            continue
        if at_line_start and depth == 0:
            start_line = line
            blank_owner = c in " \t"
            at_line_start = False
        if c in " \t\r":
            i += 1
        elif c == ";":
            while i < n and text[i] != "\n":
                i += 1
        elif c == "(":
            if depth == 0:
                open_line = line
            depth += 1
            i += 1
        elif c == ")":
            if depth == 0:
                raise ZoneError(filename, line, "')' without '('")
            depth -= 1
            i += 1
        elif c == '"':
            j = i + 1
            buf = []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    buf.append(text[j : j + 2])
                    j += 2
                    continue
                if text[j] == "\n":
                    raise ZoneError(filename, line, "unterminated quoted string")
                buf.append(text[j])
                j += 1
            if j >= n:
                raise ZoneError(filename, line, "unterminated quoted string")
            tokens.append(("".join(buf), True))
            i = j + 1
        else:
            j = i
            while j < n and text[j] not in ' \t\r\n;()"':
                j += 2 if text[j] == "\\" else 1
            tokens.append((text[i:j], False))
            i = j
    if depth:
        raise ZoneError(filename, open_line, "'(' without ')' before the end of the file")
    if tokens:
        yield _Line(start_line, blank_owner, tokens)


_TTL_RE = re.compile(r"\d+|(?:\d+[smhdwSMHDW])+")


def _plain_name(text: str, origin: Name | None) -> Name | None:
    if text[0] == "@" or "\\" in text or not text.isascii() or text == ".":
        return None
    return Name._from_plain(text, origin)


def _address(family: int, text: str) -> str:
    return socket.inet_ntop(family, socket.inet_pton(family, text))


def _fast_a(args: list[str], origin: Name | None) -> Rdata | None:
    return A(_address(socket.AF_INET, args[0])) if len(args) == 1 else None


def _fast_aaaa(args: list[str], origin: Name | None) -> Rdata | None:
    return AAAA(_address(socket.AF_INET6, args[0])) if len(args) == 1 else None


def _fast_target(cls: type[NS | CNAME | PTR]) -> Callable[[list[str], Name | None], Rdata | None]:
    def parse(args: list[str], origin: Name | None) -> Rdata | None:
        if len(args) != 1:
            return None
        target = _plain_name(args[0], origin)
        return None if target is None else cls(target)

    return parse


def _fast_mx(args: list[str], origin: Name | None) -> Rdata | None:
    if len(args) != 2 or not args[0].isdigit() or not args[0].isascii():
        return None
    preference = int(args[0])
    target = _plain_name(args[1], origin)
    return None if target is None or preference > 0xFFFF else MX(preference, target)


_FAST_RDATA: dict[int, Callable[[list[str], Name | None], Rdata | None]] = {
    RRType.A: _fast_a, RRType.AAAA: _fast_aaaa, RRType.NS: _fast_target(NS),
    RRType.CNAME: _fast_target(CNAME), RRType.PTR: _fast_target(PTR), RRType.MX: _fast_mx,
}  # fmt: skip
_FAST_TYPES = {
    spelling: int(rtype) for rtype in _FAST_RDATA
    for spelling in (RRType(rtype).name, RRType(rtype).name.lower())
}  # fmt: skip


def _is_class(text: str) -> bool:
    if text in ("IN", "in"):
        return True
    try:
        class_from_text(text)
    except ValueError:
        return False
    return True


class _Parser:
    def __init__(self, origin: Name | None, default_ttl: int | None, depth: int = 0) -> None:
        self.origin = origin
        self.ttl = default_ttl
        self.last_ttl: int | None = None
        self.owner: Name | None = None
        self.depth = depth
        self.records: list[RR] = []
        self._sized: Name | None = None
        self._size = 0

    def run(self, text: str, filename: str, base: Path | None) -> None:
        fast = self._fast
        for item in _lex(text, filename):
            if isinstance(item, tuple):
                number, blank, words = item
                if fast(words, blank):
                    continue
                logical = _Line(number, blank, [(word, False) for word in words])
            else:
                logical = item
            try:
                self._line(logical, filename, base)
            except ZoneError:
                raise
            except (ValueError, NameError_) as exc:
                raise ZoneError(filename, logical.number, str(exc)) from None

    def _origin_size(self) -> int:
        origin = self.origin
        if origin is None:
            return 0
        if self._sized is not origin:
            self._sized, self._size = origin, origin.wire_length()
        return self._size

    def _fast(self, words: list[str], blank: bool) -> bool:
        """Parse the commonest records (``[owner] [ttl] [IN] TYPE data`` of A, AAAA,
        NS, CNAME, PTR and MX, plain names) without the general machinery; False for
        anything else, and for anything wrong (the general path then says what)."""
        origin = self.origin
        if blank:
            owner = self.owner
            if owner is None:
                return False
            i = 0
        else:
            word = words[0]
            if word[0] in "$@" or "\\" in word or not word.isascii() or word == ".":
                return False
            try:
                owner = Name._from_plain(word, origin, self._origin_size())
            except NameError_:
                return False
            i = 1
        n = len(words)
        ttl: int | None = None
        rtype: int | None = None
        seen_class = False
        while i < n:
            word = words[i]
            i += 1
            rtype = _FAST_TYPES.get(word)
            if rtype is not None:
                break
            if ttl is None and word.isdigit() and word.isascii():
                ttl = int(word)
                if ttl > 0xFFFFFFFF:
                    return False
            elif word in ("IN", "in") and not seen_class:
                seen_class = True
            else:
                return False
        if rtype is None:
            return False
        args = words[i:]
        try:
            rdata = _FAST_RDATA[rtype](args, origin)
        except (ValueError, OSError, NameError_, IndexError):
            return False
        if rdata is None:
            return False
        if ttl is None:
            if self.ttl is not None:
                ttl = self.ttl
            elif self.last_ttl is not None:
                ttl = self.last_ttl
            else:
                return False
        else:
            self.last_ttl = ttl
        self.owner = owner
        self.records.append(RR(owner, rtype, Class.IN, ttl, rdata))
        return True

    def _name(self, text: str) -> Name:
        return Name.from_text(text, self.origin)

    def _line(self, line: _Line, filename: str, base: Path | None) -> None:
        tokens = line.tokens
        word = tokens[0][0]
        if not line.blank_owner and word.startswith("$") and not tokens[0][1]:
            self._directive(word.upper(), tokens[1:], line, filename, base)
            return
        if line.blank_owner:
            if self.owner is None:
                raise ValueError("record without an owner name")
            owner = self.owner
            rest = tokens
        else:
            owner = self._name(word)
            rest = tokens[1:]
        self.owner = owner
        self._record(owner, rest, None)

    def _record(self, owner: Name, rest: list[Token], forced_ttl: int | None) -> None:
        ttl: int | None = forced_ttl
        rclass: int | None = None
        i = 0
        while i < len(rest):
            text, quoted = rest[i]
            if not quoted and ttl is None and _TTL_RE.fullmatch(text):
                ttl = parse_ttl(text)
            elif not quoted and rclass is None and _is_class(text):
                rclass = class_from_text(text)
            else:
                break
            i += 1
        if i >= len(rest):
            raise ValueError("record without a type")
        rtype = type_from_text(rest[i][0])
        if rtype in (RRType.OPT, RRType.ANY, RRType.AXFR, RRType.IXFR):
            raise ValueError(f"type {rest[i][0]} cannot appear in a zone")
        rdata = rdata_from_text(rtype, rest[i + 1 :], self.origin)
        if ttl is None:
            if self.ttl is not None:
                ttl = self.ttl
            elif self.last_ttl is not None:
                ttl = self.last_ttl
            elif isinstance(rdata, SOA):
                ttl = rdata.minimum
            else:
                raise ValueError("no TTL given and no $TTL before")
        else:
            self.last_ttl = ttl
        self.records.append(RR(owner, rtype, Class.IN if rclass is None else rclass, ttl, rdata))

    def _directive(
        self, word: str, args: list[Token], line: _Line, filename: str, base: Path | None
    ) -> None:
        if word == "$ORIGIN":
            if len(args) != 1:
                raise ValueError("$ORIGIN takes one name")
            self.origin = self._name(args[0][0])
        elif word == "$TTL":
            if len(args) != 1:
                raise ValueError("$TTL takes one TTL")
            self.ttl = parse_ttl(args[0][0])
        elif word == "$INCLUDE":
            if not 1 <= len(args) <= 2:
                raise ValueError("$INCLUDE takes a file name and an optional origin")
            if self.depth >= 8:
                raise ValueError("$INCLUDE nested too deeply")
            path = Path(args[0][0])
            if not path.is_absolute() and base is not None:
                path = base / path
            try:
                text = path.read_text()
            except OSError as exc:
                raise ValueError(
                    f"cannot read $INCLUDE file {str(path)!r}: {exc.strerror}"
                ) from None
            origin = self._name(args[1][0]) if len(args) == 2 else self.origin
            child = _Parser(origin, self.ttl, self.depth + 1)
            child.last_ttl = self.last_ttl
            child.run(text, str(path), path.parent)
            self.records.extend(child.records)
        elif word == "$GENERATE":
            self._generate(args)
        else:
            raise ValueError(f"unknown directive {word}")

    def _generate(self, args: list[Token]) -> None:
        if len(args) < 3:
            raise ValueError("$GENERATE needs a range, an owner, a type and data")
        match = re.fullmatch(r"(\d+)-(\d+)(?:/(\d+))?", args[0][0])
        if not match:
            raise ValueError(f"bad $GENERATE range {args[0][0]!r}")
        start, stop = int(match[1]), int(match[2])
        step = int(match[3] or 1)
        if stop < start or step < 1 or (stop - start) // step > 65535:
            raise ValueError(f"bad $GENERATE range {args[0][0]!r}")
        lhs = args[1][0]
        rest = args[2:]
        for value in range(start, stop + 1, step):
            owner = self._name(_substitute(lhs, value))
            tokens = [(_substitute(t, value), q) for t, q in rest]
            self._record(owner, tokens, None)


def _substitute(template: str, value: int) -> str:
    def one(match: re.Match[str]) -> str:
        if match[0] == "\\$":
            return "$"
        if match[0] == "$$":
            return "$"
        offset, width, base = 0, 0, "d"
        if match[1]:
            parts = match[1].split(",")
            offset = int(parts[0])
            if len(parts) > 1:
                width = int(parts[1])
            if len(parts) > 2:
                base = parts[2]
        number = value + offset
        if base in {"n", "N"}:
            digits = f"{number:0{width}x}"
            text = ".".join(reversed(digits))
            return text.upper() if base == "N" else text
        if base not in ("d", "o", "x", "X"):
            raise ValueError(f"bad $GENERATE base {base!r}")
        return f"{number:0{width}{base}}"

    return re.sub(r"\\\$|\$\$|\$(?:\{([-+]?\d+(?:,\d+(?:,[doxXnN])?)?)\})?", one, template)


def parse_zone(
    text: str,
    origin: Name | str | None = None,
    *,
    filename: str = "<zone>",
    default_ttl: int | None = None,
    base: Path | None = None,
) -> list[RR]:
    """Parse master-format ``text`` into records, in file order."""
    if isinstance(origin, str):
        origin = Name.from_text(origin if origin.endswith(".") else origin + ".")
    parser = _Parser(origin, default_ttl)
    with no_gc():
        parser.run(text, filename, base)
    return parser.records


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic collector: a large zone makes only acyclic objects, and
    collections triggered by their sheer number would cost more than the parse."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_zone(path: str | Path, origin: Name | str | None = None) -> list[RR]:
    """Parse the zone file at ``path``; ``$INCLUDE`` is relative to its folder."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ZoneError(str(path), 0, f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ZoneError(str(path), 0, "not UTF-8 text") from None
    return parse_zone(text, origin, filename=str(path), base=path.parent)


def zone_to_text(records: list[RR]) -> str:
    """Records in master format, one per line, absolute names."""
    return "".join(rr.to_text() + "\n" for rr in records)
