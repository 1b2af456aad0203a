"""``memory``: a read-write store held in memory, empty at start.

Its contents last as long as the process. Dictionaries emptied by a removal stay,
as in a directory.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from mirage.core.types import (
    KvAlreadyPresent,
    KvDictionaryExpected,
    KvError,
    KvNotFound,
    KvValueExpected,
    kv_key,
)

from ._tree import Dictionary, TreeKv, Value, insert, segments

__all__ = ["MemoryKv"]


class MemoryKv(TreeKv):
    """A ``kv_rw`` store in memory."""

    @classmethod
    async def connect(cls, *, contents: Mapping[str, bytes] | None = None) -> MemoryKv:
        """An empty store, or one holding ``contents`` (full keys to values)."""
        root = Dictionary(mtime=time.time())
        for key, data in (contents or {}).items():
            insert(root, segments(key), Value(bytes(data), root.mtime))
        return cls(root)

    def _parent_for_write(self, names: list[str]) -> Dictionary:
        """The dictionary that holds ``names``, made if missing."""
        node = self._root
        for i, name in enumerate(names[:-1]):
            child = node.entries.get(name)
            if child is None:
                child = node.entries[name] = Dictionary(mtime=time.time())
            elif isinstance(child, Value):
                raise KvDictionaryExpected("/".join(names[: i + 1]))
            node = child
        return node

    def _check_writable(self, key: str) -> list[str]:
        names = segments(key)
        if isinstance(self._find(key), Dictionary):
            raise KvValueExpected(kv_key(key))
        return names

    async def set(self, key: str, data: bytes) -> None:
        names = self._check_writable(key)
        parent = self._parent_for_write(names)
        now = time.time()
        parent.entries[names[-1]] = Value(bytes(data), now)
        parent.mtime = now

    async def set_partial(self, key: str, offset: int, data: bytes) -> None:
        if offset < 0:
            raise ValueError(f"offset must not be negative: {offset}")
        names = self._check_writable(key)
        parent = self._parent_for_write(names)
        old = parent.entries.get(names[-1])
        current = old.data if isinstance(old, Value) else b""
        head = current[:offset].ljust(offset, b"\0")
        now = time.time()
        parent.entries[names[-1]] = Value(head + data + current[offset + len(data) :], now)
        parent.mtime = now

    async def remove(self, key: str) -> None:
        names = segments(key)
        if not names:
            self._root.entries.clear()
            self._root.mtime = time.time()
            return
        parent = self._find("/".join(names[:-1]))
        if not isinstance(parent, Dictionary) or names[-1] not in parent.entries:
            raise KvNotFound(kv_key(key))
        del parent.entries[names[-1]]
        parent.mtime = time.time()

    async def rename(self, source: str, dest: str) -> None:
        src, dst = segments(source), segments(dest)
        node = self._find(source)
        if node is None:
            raise KvNotFound(kv_key(source))
        if src == dst:
            return
        if dst[: len(src)] == src:
            raise KvError(kv_key(dest), f"cannot move {kv_key(source)!r} into itself")
        there = self._find(dest)
        if isinstance(there, Dictionary) or (
            isinstance(there, Value) and isinstance(node, Dictionary)
        ):
            raise KvAlreadyPresent(kv_key(dest))
        dest_parent = self._parent_for_write(dst)
        source_parent = self._find("/".join(src[:-1]))
        assert isinstance(source_parent, Dictionary)
        del source_parent.entries[src[-1]]
        dest_parent.entries[dst[-1]] = node
        source_parent.mtime = dest_parent.mtime = time.time()
