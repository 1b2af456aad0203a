"""Errors of mirage-irmin.

Errors about stored data name the object (its hex id) or the file at fault. Nothing
read from disk or from a peer is trusted: a decoder raises :class:`DecodeError`, a
hash that does not match raises :class:`CorruptObject`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Conflict",
    "CorruptObject",
    "DecodeError",
    "IrminError",
    "MergeConflict",
    "ObjectMissing",
    "PathError",
    "RefError",
    "RefUpdateRejected",
]


class IrminError(Exception):
    """Base of every error of this package."""


class DecodeError(IrminError):
    """Bytes that are not a valid encoding; ``what`` names the object or file."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason


class CorruptObject(IrminError):
    """An object whose bytes do not hash to the id it is stored under."""

    def __init__(self, oid: bytes, actual: bytes, where: str = "") -> None:
        place = f" in {where}" if where else ""
        super().__init__(f"object {oid.hex()}{place} hashes to {actual.hex()}")
        self.oid = oid
        self.actual = actual


class ObjectMissing(IrminError):
    """An object id that the store does not hold."""

    def __init__(self, oid: bytes, context: str = "") -> None:
        extra = f" ({context})" if context else ""
        super().__init__(f"object {oid.hex()} is missing{extra}")
        self.oid = oid


class RefError(IrminError):
    """A bad reference name or a reference file that cannot be read."""


class RefUpdateRejected(RefError):
    """A compare-and-set on a reference lost: its value was not the expected one."""

    def __init__(self, name: str, expected: bytes | None, actual: bytes | None) -> None:
        exp = expected.hex() if expected else "nothing"
        act = actual.hex() if actual else "nothing"
        super().__init__(f"{name}: expected {exp}, found {act}")
        self.name = name
        self.expected = expected
        self.actual = actual


class PathError(IrminError):
    """A path that does not name what the operation needs (missing, or the wrong kind)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path!r}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Conflict:
    """One conflicting path of a three-way merge, with its three sides.

    Each side is the object id of the entry (``None`` where the side has no entry)
    and its mode; ``reason`` says why the merge could not decide.
    """

    path: str
    reason: str
    base: tuple[int, bytes] | None
    ours: tuple[int, bytes] | None
    theirs: tuple[int, bytes] | None


class MergeConflict(IrminError):
    """A merge that could not complete; ``conflicts`` lists every conflicting path."""

    def __init__(self, conflicts: tuple[Conflict, ...]) -> None:
        lines = ", ".join(f"{c.path} ({c.reason})" for c in conflicts)
        super().__init__(f"{len(conflicts)} conflict(s): {lines}")
        self.conflicts = conflicts
