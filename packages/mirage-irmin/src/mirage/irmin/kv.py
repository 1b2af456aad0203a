"""``irmin``: a ``kv_rw`` device over a branch of a versioned store.

Every write is a commit on the branch (its message names the operation); reads see
the branch's head. The store is a Git repository on disk (``root``: a bare repository
or a work tree with a ``.git`` directory, created bare if missing; ``git log`` shows
the history) or, without a root, in memory. Directories
emptied by a removal disappear, as in Git. ``last_modified`` is the date of the
latest commit that changed the key; ``digest`` is the Git object id. Every
operation runs in the device's worker thread (one, so operations apply in the order
they were called): the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from mirage.core.types import (
    KvAlreadyPresent,
    KvDictionaryExpected,
    KvError,
    KvKind,
    KvNotFound,
    KvValueExpected,
    kv_key,
)

from ._backend import Backend, MemoryBackend
from ._errors import PathError
from ._git import GitBackend
from ._objects import MODE_FILE, TreeEntry
from ._packbackend import PackBackend
from ._repo import Info, Repo, split_path
from ._store import Store

__all__ = ["IrminKv"]

T = TypeVar("T")


class IrminKv:
    """A ``kv_rw`` store whose every change is a commit on ``branch``."""

    def __init__(self, store: Store, clock: Callable[[], float], author: str) -> None:
        self.store = store
        self._clock = clock
        self._author = author
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="irmin-kv")

    @classmethod
    async def connect(
        cls,
        *,
        root: str | None = None,
        branch: str = "main",
        backend: str = "git",
        contents: Mapping[str, bytes] | None = None,
        author: str = "mirage",
        clock: Callable[[], float] = time.time,
    ) -> IrminKv:
        """The branch ``branch`` of the repository at ``root`` (in memory if ``None``;
        ``backend`` ``"pack"``: a :class:`PackBackend`, else a Git repository; an
        existing pack backend is always opened as one), first committing ``contents``
        (full keys to values) if given."""
        store: Backend
        if backend not in ("git", "pack"):
            raise ValueError(f"backend must be 'git' or 'pack', not {backend!r}")
        if root is None:
            store = MemoryBackend()
        elif backend == "pack" or PackBackend.is_pack(root):
            store = await asyncio.to_thread(PackBackend, root, head=f"refs/heads/{branch}")
        elif (Path(root) / ".git").is_dir():
            store = await asyncio.to_thread(GitBackend.open, root)  # a work tree's .git
        else:
            store = await asyncio.to_thread(GitBackend.init, root, branch=branch)
        kv = cls(Store(Repo(store), branch), clock, author)
        if contents:
            initial = {kv._steps(k): bytes(v) for k, v in contents.items()}
            await kv._run(kv.store.batch, initial, kv._info("initial contents"))
        return kv

    async def disconnect(self) -> None:
        self._worker.shutdown(wait=True)

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn`` in the device's worker thread: the disk is never touched from
        the event loop, and operations are applied in the order they were called."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    def _info(self, message: str) -> Info:
        return Info(int(self._clock()), message, self._author, f"{self._author}@localhost")

    def _steps(self, key: str) -> str:
        key = kv_key(key)
        try:
            split_path(key)
        except PathError as e:
            raise KvError(key, f"{key!r}: {e.reason}") from None
        return key

    def _entry(self, key: str) -> TreeEntry | None:
        key = kv_key(key)
        try:
            steps = split_path(key)
        except PathError:
            return None
        return self.store.repo.find_entry(self.store.tree(), steps)

    def _value(self, key: str) -> bytes:
        e = self._entry(key)
        if e is None:
            raise KvNotFound(kv_key(key))
        if e.is_tree:
            raise KvValueExpected(kv_key(key))
        return self.store.repo.read_blob(e.oid)

    # -- kv_ro -------------------------------------------------------------------

    def _exists_sync(self, key: str) -> KvKind | None:
        e = self._entry(key)
        return None if e is None else KvKind.DICTIONARY if e.is_tree else KvKind.VALUE

    def _get_sync(self, key: str) -> bytes:
        return self._value(key)

    def _get_partial_sync(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        return self._value(key)[offset : offset + length]

    def _list_sync(self, key: str) -> list[tuple[str, KvKind]]:
        e = self._entry(key)
        if e is None:
            raise KvNotFound(kv_key(key))
        if not e.is_tree:
            raise KvDictionaryExpected(kv_key(key))
        entries = self.store.repo.read_tree(e.oid).entries
        return sorted((x.name, KvKind.DICTIONARY if x.is_tree else KvKind.VALUE) for x in entries)

    def _last_modified_sync(self, key: str) -> float:
        if self._entry(key) is None:
            raise KvNotFound(kv_key(key))
        found = self.store.last_modified(kv_key(key), depth=1000)
        if not found:
            history = self.store.history(1000)
            if not history:
                return 0.0
            found = history[-1:]
        return float(self.store.repo.read_commit(found[0]).committer.time)

    def _digest_sync(self, key: str) -> bytes:
        e = self._entry(key)
        if e is None:
            raise KvNotFound(kv_key(key))
        return e.oid

    def _size_sync(self, key: str) -> int:
        return len(self._value(key))

    # -- kv_rw -------------------------------------------------------------------

    def _check_parents(self, tree: bytes, steps: tuple[str, ...]) -> None:
        for i in range(1, len(steps)):
            e = self.store.repo.find_entry(tree, steps[:i])
            if e is None:
                return
            if not e.is_tree:
                raise KvDictionaryExpected("/".join(steps[: i + 1]))

    def _write(self, key: str, make: Callable[[bytes | None], bytes], message: str) -> None:
        key = self._steps(key)
        steps = split_path(key)
        if not steps:
            raise KvValueExpected(key)
        repo = self.store.repo

        def change(tree: bytes) -> bytes:
            self._check_parents(tree, steps)
            e = repo.find_entry(tree, steps)
            if e is not None and e.is_tree:
                raise KvValueExpected(key)
            old = repo.read_blob(e.oid) if e is not None else None
            blob = repo.write_blob(make(old))
            mode = e.mode if e is not None else MODE_FILE
            return repo.update_tree(tree, steps, TreeEntry(mode, steps[-1], blob))

        self.store.update(change, self._info(message))

    def _set_sync(self, key: str, data: bytes) -> None:
        value = bytes(data)
        self._write(key, lambda _: value, f"set {kv_key(key)}")

    def _set_partial_sync(self, key: str, offset: int, data: bytes) -> None:
        if offset < 0:
            raise ValueError(f"offset must not be negative: {offset}")

        def make(old: bytes | None) -> bytes:
            current = old or b""
            return current[:offset].ljust(offset, b"\0") + data + current[offset + len(data) :]

        self._write(key, make, f"set_partial {kv_key(key)}")

    def _remove_sync(self, key: str) -> None:
        key = kv_key(key)
        repo = self.store.repo

        def change(tree: bytes) -> bytes:
            if not key:
                return repo.empty_tree
            steps = split_path(key)
            if repo.find_entry(tree, steps) is None:
                raise KvNotFound(key)
            return repo.update_tree(tree, steps, None)

        try:
            self.store.update(change, self._info(f"remove {key}"))
        except PathError:
            raise KvNotFound(key) from None

    def _rename_sync(self, source: str, dest: str) -> None:
        src, dst = kv_key(source), self._steps(dest)
        repo = self.store.repo

        def change(tree: bytes) -> bytes:
            try:
                src_steps = split_path(src)
            except PathError:
                raise KvNotFound(src) from None
            dst_steps = split_path(dst)
            e = repo.find_entry(tree, src_steps) if src_steps else None
            if e is None:
                raise KvNotFound(src)
            if src == dst:
                return tree
            if dst.startswith(src + "/"):
                raise KvError(dst, f"cannot move {src!r} below itself")
            if not dst_steps:
                raise KvAlreadyPresent(dst)
            self._check_parents(tree, dst_steps)
            d = repo.find_entry(tree, dst_steps)
            if d is not None and (d.is_tree or e.is_tree):
                raise KvAlreadyPresent(dst)
            tree = repo.update_tree(tree, src_steps, None)
            return repo.update_tree(tree, dst_steps, TreeEntry(e.mode, dst_steps[-1], e.oid))

        self.store.update(change, self._info(f"rename {src} to {dst}"))

    # -- the device's operations, in the worker thread -------------------------------

    async def exists(self, key: str) -> KvKind | None:
        return await self._run(self._exists_sync, key)

    async def get(self, key: str) -> bytes:
        return await self._run(self._get_sync, key)

    async def get_partial(self, key: str, offset: int, length: int) -> bytes:
        return await self._run(self._get_partial_sync, key, offset, length)

    async def list(self, key: str) -> list[tuple[str, KvKind]]:
        return await self._run(self._list_sync, key)

    async def last_modified(self, key: str) -> float:
        return await self._run(self._last_modified_sync, key)

    async def digest(self, key: str) -> bytes:
        return await self._run(self._digest_sync, key)

    async def size(self, key: str) -> int:
        return await self._run(self._size_sync, key)

    async def set(self, key: str, data: bytes) -> None:
        await self._run(self._set_sync, key, bytes(data))

    async def set_partial(self, key: str, offset: int, data: bytes) -> None:
        await self._run(self._set_partial_sync, key, offset, bytes(data))

    async def remove(self, key: str) -> None:
        await self._run(self._remove_sync, key)

    async def rename(self, source: str, dest: str) -> None:
        await self._run(self._rename_sync, source, dest)
