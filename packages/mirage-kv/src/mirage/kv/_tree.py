"""A tree of values in memory, and the read operations of a store over it.

The memory, crunch and tar stores keep their contents as a tree of
:class:`Dictionary` and :class:`Value` nodes; :class:`TreeKv` answers every
``kv_ro`` operation from it. Digests are SHA-256: of the content for a value, and
for a dictionary of its sorted entries (kind, name and digest of each), so equal
trees have equal digests.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from mirage.core.types import (
    KvDictionaryExpected,
    KvKind,
    KvNotFound,
    KvValueExpected,
    kv_key,
)

__all__ = ["Dictionary", "Node", "TreeKv", "Value", "digest", "insert", "segments"]


@dataclass(slots=True)
class Value:
    """A leaf of the store: its bytes and when they were last written."""

    data: bytes
    mtime: float


@dataclass(slots=True)
class Dictionary:
    """An inner node of the store: named entries and when it last changed."""

    entries: dict[str, Value | Dictionary] = field(default_factory=dict)
    mtime: float = 0.0


Node = Value | Dictionary


def segments(key: str) -> list[str]:
    """The names along a key; ``[]`` for the root."""
    key = kv_key(key)
    return key.split("/") if key else []


def digest(node: Node) -> bytes:
    if isinstance(node, Value):
        return hashlib.sha256(node.data).digest()
    h = hashlib.sha256(b"dictionary\0")
    for name in sorted(node.entries):
        child = node.entries[name]
        kind = b"v" if isinstance(child, Value) else b"d"
        h.update(kind + name.encode("utf-8", "surrogateescape") + b"\0" + digest(child))
    return h.digest()


def insert(root: Dictionary, names: list[str], value: Value) -> None:
    """Put ``value`` at ``names``, making missing dictionaries (with its mtime).

    Raises :class:`KvValueExpected` if a dictionary is at ``names`` and
    :class:`KvDictionaryExpected` if a value is on the way.
    """
    if not names:
        raise KvValueExpected("")
    node = root
    for i, name in enumerate(names[:-1]):
        child = node.entries.get(name)
        if child is None:
            child = node.entries[name] = Dictionary(mtime=value.mtime)
        elif isinstance(child, Value):
            raise KvDictionaryExpected("/".join(names[: i + 1]))
        node = child
    if isinstance(node.entries.get(names[-1]), Dictionary):
        raise KvValueExpected("/".join(names))
    node.entries[names[-1]] = value


class TreeKv:
    """The ``kv_ro`` operations over a tree held in memory."""

    def __init__(self, root: Dictionary) -> None:
        self._root = root

    async def disconnect(self) -> None:
        pass

    def _find(self, key: str) -> Node | None:
        node: Node = self._root
        for name in segments(key):
            if not isinstance(node, Dictionary):
                return None
            child = node.entries.get(name)
            if child is None:
                return None
            node = child
        return node

    def _value(self, key: str) -> Value:
        node = self._find(key)
        if node is None:
            raise KvNotFound(kv_key(key))
        if isinstance(node, Dictionary):
            raise KvValueExpected(kv_key(key))
        return node

    async def exists(self, key: str) -> KvKind | None:
        node = self._find(key)
        if node is None:
            return None
        return KvKind.VALUE if isinstance(node, Value) else KvKind.DICTIONARY

    async def get(self, key: str) -> bytes:
        return self._value(key).data

    async def get_partial(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError(f"offset and length must not be negative: {offset}, {length}")
        return self._value(key).data[offset : offset + length]

    async def list(self, key: str) -> list[tuple[str, KvKind]]:
        node = self._find(key)
        if node is None:
            raise KvNotFound(kv_key(key))
        if isinstance(node, Value):
            raise KvDictionaryExpected(kv_key(key))
        return [
            (name, KvKind.VALUE if isinstance(child, Value) else KvKind.DICTIONARY)
            for name, child in sorted(node.entries.items())
        ]

    async def last_modified(self, key: str) -> float:
        node = self._find(key)
        if node is None:
            raise KvNotFound(kv_key(key))
        return float(node.mtime)

    async def digest(self, key: str) -> bytes:
        node = self._find(key)
        if node is None:
            raise KvNotFound(kv_key(key))
        return digest(node)

    async def size(self, key: str) -> int:
        return len(self._value(key).data)
