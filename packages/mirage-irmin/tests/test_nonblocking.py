"""The device does its disk work off the event loop, in call order; big packs are
memory-mapped, not read whole."""

from __future__ import annotations

import asyncio
import mmap
import os
import random
import threading
from pathlib import Path

from conftest import git, needs_git

from mirage.irmin import GitBackend, Info, IrminKv, Repo, Store


def test_device_io_runs_in_a_worker_in_order(tmp_path: Path) -> None:
    async def main() -> None:
        kv = await IrminKv.connect(root=str(tmp_path / "r.git"))
        backend = kv.store.repo.backend
        threads: set[threading.Thread] = set()
        read, get_ref = backend.read, backend.get_ref

        def spy_read(oid: bytes):  # type: ignore[no-untyped-def]
            threads.add(threading.current_thread())
            return read(oid)

        def spy_get_ref(name: str):  # type: ignore[no-untyped-def]
            threads.add(threading.current_thread())
            return get_ref(name)

        backend.read = spy_read  # type: ignore[method-assign]
        backend.get_ref = spy_get_ref  # type: ignore[method-assign]
        await kv.set("a/b", b"1")
        assert await kv.get("a/b") == b"1"
        await asyncio.gather(*(kv.set("k", b"%d" % i) for i in range(20)))
        assert await kv.get("k") == b"19"  # applied in the order of the calls
        assert threads and threading.current_thread() not in threads
        await kv.disconnect()

    asyncio.run(main())


@needs_git
def test_big_packs_are_memory_mapped(tmp_path: Path) -> None:
    rnd = random.Random(7)
    values = {f"big/{i}": rnd.randbytes(300_000) for i in range(5)}  # incompressible
    store = Store(Repo(GitBackend.init(tmp_path / "r.git")))
    store.batch(values, Info(date=1))
    for reopened in (store.repo.backend, GitBackend.open(tmp_path / "r.git")):
        packs = list(reopened._packs.values())  # type: ignore[attr-defined]
        assert any(isinstance(p._data, mmap.mmap) for p in packs)
        fresh = Store(Repo(reopened))
        assert all(fresh.get(k) == v for k, v in values.items())
    git("fsck", "--strict", cwd=tmp_path / "r.git")
    assert os.path.getsize(next((tmp_path / "r.git/objects/pack").glob("*.pack"))) > 1 << 20
