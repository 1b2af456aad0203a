"""Watches woken by inotify: a ref moved by ``git`` (another process) is noticed with
no polling at all (the fallback poll is an hour away); the event parser is total."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest
from conftest import git, needs_git
from hypothesis import given
from hypothesis import strategies as st

from mirage.irmin import GitBackend, Info, PackBackend, Repo, Store
from mirage.irmin._inotify import RefNotifier, inotify_available, parse_events, run_watcher

needs_inotify = pytest.mark.skipif(
    not inotify_available(), reason="needs Linux inotify (inotify_init1 in libc)"
)
WAIT = 120.0  # generous: nothing here is timed


@given(st.binary(max_size=200))
def test_parse_events_is_total(data: bytes) -> None:
    for wd, mask, name in parse_events(data):
        assert isinstance(wd, int) and isinstance(mask, int) and isinstance(name, bytes)


def test_parse_events_reads_whole_events() -> None:
    one = struct.pack("=iIII", 1, 0x80, 0, 8) + b"main\0\0\0\0"
    two = struct.pack("=iIII", 2, 0x100, 0, 0)
    assert parse_events(one + two + one[:10]) == [(1, 0x80, b"main"), (2, 0x100, b"")]


def _commit_by_git(git_dir: Path, parent: bytes, branch: str = "main") -> bytes:
    tree = git("mktree", cwd=git_dir, input=b"").strip().decode()
    out = git("commit-tree", tree, "-p", parent.hex(), "-m", "by git", cwd=git_dir)
    git("update-ref", f"refs/heads/{branch}", out.strip().decode(), cwd=git_dir)
    return bytes.fromhex(out.strip().decode())


@needs_git
@needs_inotify
def test_watch_is_woken_by_inotify(tmp_path: Path) -> None:
    repo = Repo(GitBackend.init(tmp_path / "r.git"))
    store = Store(repo)
    first = store.set("a", b"1", Info(1))
    side = Store(repo, "deep/side")  # a ref in a directory made later
    seen: asyncio.Queue[tuple[bytes | None, bytes | None]] = asyncio.Queue()
    deep: asyncio.Queue[tuple[bytes | None, bytes | None]] = asyncio.Queue()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        store.watch(lambda old, new: loop.call_soon_threadsafe(seen.put_nowait, (old, new)))
        side.watch(lambda old, new: loop.call_soon_threadsafe(deep.put_nowait, (old, new)))
        stop = asyncio.Event()
        task = asyncio.create_task(run_watcher(repo, stop, interval=3600.0))
        await asyncio.sleep(0.1)  # let it watch (no harm if later: it reads refs first)
        new = await asyncio.to_thread(_commit_by_git, tmp_path / "r.git", first)
        assert await asyncio.wait_for(seen.get(), WAIT) == (first, new)
        other = await asyncio.to_thread(_commit_by_git, tmp_path / "r.git", new, "deep/side")
        assert await asyncio.wait_for(deep.get(), WAIT) == (None, other)
        stop.set()
        await asyncio.wait_for(task, WAIT)

    asyncio.run(main())


@needs_inotify
def test_notifier_on_a_pack_backend(tmp_path: Path) -> None:
    repo = Repo(PackBackend(tmp_path / "p"))
    seen: list[tuple[bytes | None, bytes | None]] = []
    Store(repo).watch(lambda old, new: seen.append((old, new)))
    notifier = RefNotifier(repo)
    assert not notifier.handle_readable()  # nothing happened
    other = Store(Repo(PackBackend(tmp_path / "p")))  # another writer, its own Repo
    head = other.set("k", b"v", Info(1))
    assert notifier.handle_readable()
    assert seen == [(None, head)]
    notifier.close()
