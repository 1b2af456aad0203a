"""What a store needs of its storage: content-addressed objects and references.

Theory of operation: objects are immutable and named by their hash, so writing one
twice is harmless and readers never lock. References are the only mutable state;
every change goes through :meth:`Backend.update_ref`, a compare-and-set: it succeeds
only if the reference still holds ``expected`` (``None``: absent), otherwise it
raises :class:`RefUpdateRejected` and the caller retries from the new value.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Protocol

from ._errors import ObjectMissing, RefError, RefUpdateRejected
from ._objects import ObjectType, hash_object
from ._refs import check_ref_name

__all__ = ["Backend", "MemoryBackend"]


class Backend(Protocol):
    def read(self, oid: bytes) -> tuple[ObjectType, bytes]:
        """The type and body of an object; :class:`ObjectMissing` if absent."""
        ...

    def contains(self, oid: bytes) -> bool: ...

    def write(self, kind: ObjectType, body: bytes) -> bytes:
        """Store an object (once); its id."""
        ...

    def write_many(self, objects: Iterable[tuple[ObjectType, bytes]]) -> list[bytes]:
        """Store many objects at once (as one pack on disk); their ids."""
        ...

    def get_ref(self, name: str) -> bytes | None:
        """The id a reference points to (symbolic refs followed), or ``None``."""
        ...

    def update_ref(self, name: str, expected: bytes | None, new: bytes | None) -> None:
        """Compare-and-set: ``new`` (``None`` deletes) if the ref holds ``expected``."""
        ...

    def list_refs(self, prefix: str = "refs/") -> dict[str, bytes]: ...

    def head(self) -> str:
        """The branch ``HEAD`` names (``refs/heads/main``)."""
        ...

    def set_head(self, ref: str) -> None: ...


class MemoryBackend:
    """Objects and references in dictionaries; thread-safe."""

    def __init__(self, object_format: str = "sha1") -> None:
        self.object_format = object_format
        self._objects: dict[bytes, tuple[ObjectType, bytes]] = {}
        self._refs: dict[str, bytes] = {}
        self._head = "refs/heads/main"
        self._lock = threading.Lock()

    def read(self, oid: bytes) -> tuple[ObjectType, bytes]:
        try:
            return self._objects[oid]
        except KeyError:
            raise ObjectMissing(oid) from None

    def contains(self, oid: bytes) -> bool:
        return oid in self._objects

    def write(self, kind: ObjectType, body: bytes) -> bytes:
        oid = hash_object(kind, body, self.object_format)
        self._objects.setdefault(oid, (kind, bytes(body)))
        return oid

    def write_many(self, objects: Iterable[tuple[ObjectType, bytes]]) -> list[bytes]:
        return [self.write(kind, body) for kind, body in objects]

    def get_ref(self, name: str) -> bytes | None:
        if name == "HEAD":
            name = self._head
        return self._refs.get(name)

    def update_ref(self, name: str, expected: bytes | None, new: bytes | None) -> None:
        if name == "HEAD":
            name = self._head
        check_ref_name(name)
        with self._lock:
            actual = self._refs.get(name)
            if actual != expected:
                raise RefUpdateRejected(name, expected, actual)
            if new is None:
                del self._refs[name]
            else:
                self._refs[name] = new

    def list_refs(self, prefix: str = "refs/") -> dict[str, bytes]:
        return {k: v for k, v in sorted(self._refs.items()) if k.startswith(prefix)}

    def head(self) -> str:
        return self._head

    def set_head(self, ref: str) -> None:
        if not check_ref_name(ref).startswith("refs/"):
            raise RefError(f"HEAD must name a branch, not {ref!r}")
        self._head = ref
