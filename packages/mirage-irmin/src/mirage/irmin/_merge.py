"""Merge functions for contents, after Irmin's ``Merge`` combinators.

A merge function gets the path and the three versions of a value (``None`` where a
side has none: added, or deleted) and returns the merged value (``None`` deletes), or
raises :class:`Unmergeable` with the reason. It is called only when both sides
changed the value differently; the trivial cases are decided before.

Merges of trees are commutative when the merge function is (swapping ``ours`` and
``theirs`` gives the same result): :func:`conflict`, :func:`counter`,
:func:`line_set`, :func:`json_set`, :func:`lww` and :func:`json_object` are;
:func:`ours` and :func:`theirs` are not, by design.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = [
    "MergeFn",
    "Unmergeable",
    "conflict",
    "MERGES",
    "counter",
    "json_object",
    "json_set",
    "line_set",
    "lww",
    "lww_decode",
    "lww_encode",
    "ours",
    "theirs",
]

MergeFn = Callable[[str, bytes | None, bytes | None, bytes | None], bytes | None]


class Unmergeable(Exception):
    """Raised by a merge function that cannot merge the three versions."""


def conflict(
    path: str, base: bytes | None, ours: bytes | None, theirs: bytes | None
) -> bytes | None:
    """Every concurrent change is a conflict (the default, as ``git merge-tree``)."""
    if ours is None or theirs is None:
        raise Unmergeable("changed on one side, deleted on the other")
    raise Unmergeable("changed on both sides" if base is not None else "added on both sides")


def ours(path: str, base: bytes | None, ours: bytes | None, theirs: bytes | None) -> bytes | None:
    """Our version wins."""
    return ours


def theirs(path: str, base: bytes | None, ours: bytes | None, theirs: bytes | None) -> bytes | None:
    """Their version wins."""
    return theirs


def _int(value: bytes | None) -> int:
    if value is None:
        return 0
    try:
        return int(value.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise Unmergeable(f"not a counter: {value[:32]!r}") from None


def counter(
    path: str, base: bytes | None, ours: bytes | None, theirs: bytes | None
) -> bytes | None:
    """Decimal counters: both increments apply (``base + Δours + Δtheirs``)."""
    if ours is None or theirs is None:
        raise Unmergeable("counter deleted on one side")
    b = _int(base)
    return b"%d" % (b + (_int(ours) - b) + (_int(theirs) - b))


def _lines(value: bytes | None) -> set[bytes]:
    return set(value.splitlines()) if value else set()


def line_set(
    path: str, base: bytes | None, ours: bytes | None, theirs: bytes | None
) -> bytes | None:
    """Sets of lines: what either side added is in, what either side removed is out;
    the result is sorted, one element a line."""
    b, o, t = _lines(base), _lines(ours), _lines(theirs)
    merged = (o & t) | (o - b) | (t - b)
    if ours is None and theirs is None:
        return None
    return b"".join(line + b"\n" for line in sorted(merged))


_MISSING: object = object()


def _same(a: object, b: object) -> bool:
    """Equal as JSON values: ``false`` is not ``0``, nor ``1`` ``1.0`` (Python's ``==``
    says they are)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    return a == b


def _merge_json(base: object, ours: object, theirs: object, where: str) -> object:
    if _same(ours, theirs):
        return ours
    if _same(base, ours):
        return theirs
    if _same(base, theirs):
        return ours
    if isinstance(ours, dict) and isinstance(theirs, dict):
        old = base if isinstance(base, dict) else {}
        out = {}
        for k in sorted(ours.keys() | theirs.keys()):
            value = _merge_json(
                old.get(k, _MISSING), ours.get(k, _MISSING), theirs.get(k, _MISSING), f"{where}/{k}"
            )
            if value is not _MISSING:
                out[k] = value
        return out
    raise Unmergeable(f"JSON value at {where or '/'} changed on both sides")


def json_object(
    path: str, base: bytes | None, ours: bytes | None, theirs: bytes | None
) -> bytes | None:
    """JSON documents: objects merged key by key (recursively); any other value
    changed on both sides is a conflict. The result is written compactly with sorted
    keys."""
    import json

    def load(value: bytes | None) -> object:
        if value is None:
            return _MISSING
        try:
            return json.loads(value)
        except (ValueError, UnicodeDecodeError):
            raise Unmergeable(f"not JSON: {value[:32]!r}") from None

    merged = _merge_json(load(base), load(ours), load(theirs), "")
    if merged is _MISSING:
        return None
    return json.dumps(merged, sort_keys=True, separators=(",", ":")).encode()


def lww_encode(timestamp: int, value: bytes) -> bytes:
    """A last-writer-wins value: the decimal ``timestamp``, a space, the value."""
    return b"%d %s" % (timestamp, value)


def lww_decode(data: bytes) -> tuple[int, bytes]:
    """The timestamp and value of :func:`lww_encode`; :class:`Unmergeable` if
    ``data`` is not one."""
    import re

    stamp, sep, value = data.partition(b" ")
    if not sep or re.fullmatch(rb"-?[0-9]{1,40}", stamp) is None:
        raise Unmergeable(f"not a last-writer-wins value: {data[:32]!r}")
    return int(stamp), value


def lww(path: str, base: bytes | None, ours: bytes | None, theirs: bytes | None) -> bytes | None:
    """Last writer wins (values of :func:`lww_encode`): the greater timestamp wins; on
    equal timestamps the greater value (bytewise), so every replica picks the same
    one whatever the merge order. A value changed on one side and deleted on the
    other is kept (a deletion carries no timestamp). A side left as in ``base``
    takes the other side's value, whatever the timestamps, as in any merge."""
    if ours in (base, theirs) or theirs == base:
        return theirs if ours == base else ours
    candidates = [v for v in (ours, theirs) if v is not None]
    if not candidates:
        return None
    best = max(candidates, key=lww_decode)
    return lww_encode(*lww_decode(best))


def _json_list(value: bytes | None) -> set[str]:
    import json

    if value is None:
        return set()
    try:
        items = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        raise Unmergeable(f"not JSON: {value[:32]!r}") from None
    if not isinstance(items, list):
        raise Unmergeable(f"not a JSON array: {value[:32]!r}")
    return {json.dumps(x, sort_keys=True, separators=(",", ":")) for x in items}


def json_set(
    path: str, base: bytes | None, ours: bytes | None, theirs: bytes | None
) -> bytes | None:
    """Sets as JSON arrays (any JSON elements): what either side added is in, what
    either side removed is out; written as a sorted array (by each element's
    compact JSON)."""
    b, o, t = _json_list(base), _json_list(ours), _json_list(theirs)
    if ours is None and theirs is None:
        return None
    merged = (o & t) | (o - b) | (t - b)
    return ("[" + ",".join(sorted(merged)) + "]").encode()


MERGES: dict[str, MergeFn] = {
    "conflict": conflict,
    "ours": ours,
    "theirs": theirs,
    "counter": counter,
    "lines": line_set,
    "json": json_object,
    "json-set": json_set,
    "lww": lww,
}
"""The merge functions by the names the command line and the HTTP API use."""
