"""Ref updates that reuse the replaced inode (no block freed per commit) keep Git's
lock protocol and never write a live ref in place."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import git, needs_git

from mirage.irmin import GitBackend, Info, RefLocked, Repo, Store


def _spare(backend: GitBackend, name: str) -> Path:
    return backend.git_dir / "irmin-spare" / name.encode().hex()


@needs_git
def test_updates_reuse_the_replaced_inode(tmp_path: Path) -> None:
    backend = GitBackend.init(tmp_path / "r.git")
    store = Store(Repo(backend))
    heads = [store.set("k", b"%d" % i, Info(date=i)) for i in range(5)]
    ref = backend.git_dir / "refs/heads/main"
    spare = _spare(backend, "refs/heads/main")
    assert ref.read_bytes() == heads[-1].hex().encode() + b"\n"  # type: ignore[union-attr]
    assert spare.is_file() and not spare.samefile(ref)
    inodes = {os.stat(ref).st_ino, os.stat(spare).st_ino}
    store.set("k", b"again", Info(date=9))
    assert {os.stat(ref).st_ino, os.stat(spare).st_ino} == inodes  # two inodes, in turn
    assert git("rev-parse", "main", cwd=backend.git_dir).strip() == store.head().hex().encode()  # type: ignore[union-attr]
    git("fsck", "--strict", cwd=backend.git_dir)
    # git updates the ref beside us: we read and replace its value as usual
    git("update-ref", "refs/heads/main", heads[1].hex(), cwd=backend.git_dir)  # type: ignore[union-attr]
    assert store.get("k") == b"1"
    store.set("k", b"after git", Info(date=10))
    assert git("show", "main:k", cwd=backend.git_dir) == b"after git"


def test_a_spare_that_is_the_live_ref_is_not_written_in_place(tmp_path: Path) -> None:
    backend = GitBackend.init(tmp_path / "r.git")
    store = Store(Repo(backend))
    first = store.set("k", b"1", Info(date=1))
    ref = backend.git_dir / "refs/heads/main"
    spare = _spare(backend, "refs/heads/main")
    spare.parent.mkdir(exist_ok=True)
    if spare.exists():
        spare.unlink()
    os.link(ref, spare)  # as a writer killed between linking the spare and renaming
    witness = tmp_path / "witness"
    os.link(ref, witness)  # the live ref's inode
    second = store.set("k", b"2", Info(date=2))
    assert witness.read_bytes() == first.hex().encode() + b"\n"  # type: ignore[union-attr]
    assert ref.read_bytes() == second.hex().encode() + b"\n"  # type: ignore[union-attr]
    assert not ref.samefile(witness)


def test_the_lock_still_excludes(tmp_path: Path) -> None:
    backend = GitBackend.init(tmp_path / "r.git")
    store = Store(Repo(backend))
    head = store.set("k", b"1", Info(date=1))
    store.set("k", b"2", Info(date=2))  # a spare exists now
    lock = backend.git_dir / "refs/heads/main.lock"
    lock.write_bytes(b"held by someone else\n")
    with pytest.raises(RefLocked):
        backend.update_ref("refs/heads/main", store.head(), head)
    assert lock.read_bytes() == b"held by someone else\n"
    lock.unlink()
    backend.update_ref("refs/heads/main", store.head(), head)
    assert store.get("k") == b"1"
    backend.update_ref("refs/heads/main", head, None)  # deletion
    assert store.head() is None
    store.set("k", b"3", Info(date=3))  # re-created, through the spare
    assert store.get("k") == b"3"


@needs_git
def test_a_ref_made_symbolic_since_our_last_update_is_followed(tmp_path: Path) -> None:
    backend = GitBackend.init(tmp_path / "r.git")
    store = Store(Repo(backend), "alias")
    store.set("k", b"1", Info(date=1))  # refs/heads/alias holds an id, remembered as such
    main = Store(Repo(backend), "main")
    main.set("k", b"main", Info(date=2))
    git("symbolic-ref", "refs/heads/alias", "refs/heads/main", cwd=backend.git_dir)
    head = store.set("k", b"2", Info(date=3))  # checked under the lock: through to main
    assert (backend.git_dir / "refs/heads/alias").read_bytes() == b"ref: refs/heads/main\n"
    assert backend.get_ref("refs/heads/main") == head
    assert main.get("k") == b"2"
    git("fsck", "--strict", cwd=backend.git_dir)


@needs_git
def test_a_foreign_tree_out_of_order_is_sorted_when_rewritten(tmp_path: Path) -> None:
    from mirage.irmin import ObjectType, Tree, TreeEntry
    from mirage.irmin._objects import MODE_FILE, MODE_TREE, encode_object

    backend = GitBackend.init(tmp_path / "r.git")
    repo = Repo(backend)
    blob = backend.write(ObjectType.BLOB, b"x")
    entries = (TreeEntry(MODE_FILE, "b", blob), TreeEntry(MODE_FILE, "a", blob))
    unsorted = backend.write(*encode_object(Tree(entries)))  # not in Git's order
    root = backend.write(*encode_object(Tree((TreeEntry(MODE_TREE, "d", unsorted),))))
    store = Store(repo)
    store.update(lambda _: root, Info(date=1))
    store.set("d/a", b"y", Info(date=2))  # replaces an entry of the foreign tree
    fresh = Repo(GitBackend(backend.git_dir))
    entry = fresh.find_entry(store.tree(), ("d",))
    assert entry is not None
    assert [e.name for e in fresh.read_tree(entry.oid).entries] == ["a", "b"]
    listing = git("ls-tree", entry.oid.hex(), cwd=backend.git_dir)
    assert git("mktree", cwd=backend.git_dir, input=listing).strip() == entry.oid.hex().encode()


_WRITER = """
import sys
from mirage.irmin import GitBackend, Info, Repo, Store
store = Store(Repo(GitBackend(sys.argv[1])), "main", retries=100_000)
w = sys.argv[2]
for i in range(300):
    store.set(f"w{w}/{i}", b"%d" % i, Info(date=i))
"""


@needs_git
def test_writers_in_several_processes_lose_no_update(tmp_path: Path) -> None:
    backend = GitBackend.init(tmp_path / "r.git")
    store = Store(Repo(backend))
    store.set("init", b"", Info(date=0))
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(backend.git_dir), str(w)])
        for w in range(3)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    for w in range(3):
        assert [name for name, _ in store.list(f"w{w}")] == sorted(str(i) for i in range(300))
    assert len(store.history()) == 901
    git("fsck", "--strict", "--no-dangling", cwd=backend.git_dir)
