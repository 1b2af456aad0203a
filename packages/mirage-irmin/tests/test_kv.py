"""The ``irmin`` device passes the ``kv_rw`` conformance kit, in memory and on a Git
repository on disk; its history is real Git history."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Mapping
from pathlib import Path

from conftest import git, needs_git

from mirage.core.testing import AsyncTests, KvRwTests, async_test
from mirage.core.types import KvRw
from mirage.irmin import IrminKv


class TestIrminKvMemory(KvRwTests):
    async def make_kv_rw(self, contents: Mapping[str, bytes]) -> KvRw:
        return await IrminKv.connect(contents=contents)


class TestIrminKvGit(KvRwTests):
    _dirs = itertools.count()
    _tmp = tempfile.TemporaryDirectory(prefix="irmin-kv-")

    async def make_kv_rw(self, contents: Mapping[str, bytes]) -> KvRw:
        root = Path(self._tmp.name) / f"r{next(self._dirs)}.git"
        return await IrminKv.connect(root=str(root), contents=contents)


class TestIrminKvPack(KvRwTests):
    _dirs = itertools.count()
    _tmp = tempfile.TemporaryDirectory(prefix="irmin-kv-pack-")

    async def make_kv_rw(self, contents: Mapping[str, bytes]) -> KvRw:
        root = Path(self._tmp.name) / f"p{next(self._dirs)}"
        return await IrminKv.connect(root=str(root), backend="pack", contents=contents)


class TestHistory(AsyncTests):
    @needs_git
    @async_test
    async def test_every_write_is_a_git_commit(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "kv.git"
            clock = iter(range(1_700_000_000, 1_700_000_100)).__next__
            kv = await IrminKv.connect(root=str(root), branch="data", clock=lambda: float(clock()))
            await kv.set("a/b", b"one")
            await kv.set("a/c", b"two")
            await kv.rename("a/b", "z")
            await kv.remove("a")
            assert await kv.last_modified("z") == 1_700_000_002.0
            log = git("log", "--format=%s %at", "data", cwd=root).decode().splitlines()
            assert log == [
                "remove a 1700000003",
                "rename a/b to z 1700000002",
                "set a/c 1700000001",
                "set a/b 1700000000",
            ]
            git("fsck", "--strict", cwd=root)
            assert git("cat-file", "blob", "data:z", cwd=root) == b"one"


class TestWorkTree(AsyncTests):
    @needs_git
    @async_test
    async def test_uses_an_existing_work_tree(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / "w"
            work.mkdir()
            git("init", "-q", "-b", "main", cwd=work)
            (work / "hello").write_text("from git\n")
            git("add", "hello", cwd=work)
            git("commit", "-q", "-m", "git", cwd=work)
            kv = await IrminKv.connect(root=str(work), clock=lambda: 1_700_000_000.0)
            assert await kv.get("hello") == b"from git\n"
            await kv.set("from/kv", b"hi\n")
            git("checkout", "-q", "-f", "main", cwd=work)
            assert (work / "from" / "kv").read_text() == "hi\n"
            assert not (work / "HEAD").exists()
