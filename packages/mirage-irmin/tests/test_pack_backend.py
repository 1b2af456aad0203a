"""The pack backend under the Store: large trees as inodes with Git's ids, an index
that persists, several processes on one store, export to and import from Git, bad
bytes detected, and writers killed with SIGKILL."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from conftest import git, kill_writer_repeatedly, needs_git
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirage.irmin import (
    CorruptObject,
    GitBackend,
    Info,
    MemoryBackend,
    ObjectType,
    PackBackend,
    PathError,
    Repo,
    Store,
    clone,
    fetch,
    push,
)
from mirage.irmin._cli import run
from mirage.irmin._objects import decode_object


def at(t: int) -> Info:
    return Info(date=t, message=f"at {t}")


def big(n: int) -> dict[str, bytes | None]:
    return {f"dir/f{i:05d}": b"%d\n" % i for i in range(n)}


def test_large_tree_is_an_inode_with_gits_id(tmp_path: Path) -> None:
    backend = PackBackend(tmp_path / "p")
    store = Store(Repo(backend))
    store.batch(big(10_000), at(1))
    size = (tmp_path / "p" / "objects.pack").stat().st_size
    store.set("dir/f00007", b"changed\n", at(2))
    grown = (tmp_path / "p" / "objects.pack").stat().st_size - size
    entry = store.repo.find_entry(store.tree(), ("dir",))
    assert entry is not None
    kind, body = backend.read(entry.oid)
    assert kind is ObjectType.TREE
    assert len(decode_object(kind, body, "dir").entries) == 10_000  # type: ignore[union-attr]
    assert backend.is_inode(entry.oid)
    # a chunk or two and the inode (and the blob, root tree and commit), not the tree
    assert grown < len(body) // 3
    memory = Store(Repo(MemoryBackend()))
    memory.batch({**big(10_000), "dir/f00007": b"changed\n"}, at(1))
    assert memory.repo.find_entry(memory.tree(), ("dir",)) == entry
    assert store.get("dir/f00007") == b"changed\n"
    assert len(store.list("dir")) == 10_000
    backend.close()


def test_index_persists_and_survives_a_lost_log(tmp_path: Path) -> None:
    backend = PackBackend(tmp_path / "p")
    store = Store(Repo(backend))
    for i in range(5):
        store.batch({f"k{i}/{j}": b"%d" % (i * 10_000 + j) for j in range(1500)}, at(i))
    table, log = backend.indexed()
    assert table > 4096  # compacted at least once
    backend.close()
    reopened = PackBackend(tmp_path / "p")
    assert reopened.indexed() == (table, log)
    assert Store(Repo(reopened)).get("k3/77") == b"30077"
    reopened.close()
    # the log lost (a crash before it was written): the frames are found by a scan
    os.truncate(tmp_path / "p" / "objects.log", 0)
    again = PackBackend(tmp_path / "p")
    assert Store(Repo(again)).get("k4/1499") == b"41499"
    again.close()


def test_torn_tail_is_cut(tmp_path: Path) -> None:
    backend = PackBackend(tmp_path / "p")
    store = Store(Repo(backend))
    store.set("a", b"1", at(1))
    backend.close()
    pack = tmp_path / "p" / "objects.pack"
    size = pack.stat().st_size
    with pack.open("ab") as f:
        f.write(b"b" + b"\x01" * 20 + b"\x7f" + b"half")  # a frame cut short
    reopened = PackBackend(tmp_path / "p")
    assert pack.stat().st_size == size
    store = Store(Repo(reopened))
    assert store.get("a") == b"1"
    store.set("b", b"2", at(2))
    assert store.get("b") == b"2"
    reopened.close()


def test_two_handles_share_a_store(tmp_path: Path) -> None:
    a = Store(Repo(PackBackend(tmp_path / "p")))
    b = Store(Repo(PackBackend(tmp_path / "p")))
    a.set("x", b"1", at(1))
    assert b.get("x") == b"1"
    b.set("y", b"2", at(2))
    a.set("z", b"3", at(3))
    assert sorted(n for n, _ in b.list()) == ["x", "y", "z"]


def test_corruption_is_named(tmp_path: Path) -> None:
    backend = PackBackend(tmp_path / "p")
    oid = backend.write(ObjectType.BLOB, b"precious contents")
    backend.close()
    pack = tmp_path / "p" / "objects.pack"
    data = bytearray(pack.read_bytes())
    data[data.index(b"precious")] ^= 1
    pack.write_bytes(bytes(data))
    reopened = PackBackend(tmp_path / "p")
    with pytest.raises(CorruptObject) as e:
        reopened.read(oid)
    assert oid.hex() in str(e.value)
    reopened.close()


@needs_git
def test_export_to_git_and_import_back(tmp_path: Path) -> None:
    pack = PackBackend(tmp_path / "p")
    store = Store(Repo(pack))
    store.batch({**big(1000), "etc/conf": b"x=1\n"}, at(1))
    feature = store.clone("feature")
    feature.set("etc/other", b"y\n", at(2))
    store.set("dir/f00001", b"one\n", at(3))
    store.merge_with_branch("feature", at(4))
    exported = clone(tmp_path / "p", tmp_path / "g.git")
    git("fsck", "--strict", "--no-dangling", cwd=tmp_path / "g.git")
    assert git("rev-parse", "main^{tree}", cwd=tmp_path / "g.git").decode().strip() == (
        store.tree().hex()
    )
    assert git("cat-file", "-p", "main:dir/f00001", cwd=tmp_path / "g.git") == b"one\n"
    assert len(git("log", "--format=%H", "main", cwd=tmp_path / "g.git").split()) == 4
    assert isinstance(exported, GitBackend)
    # git writes, we import into a new pack backend: the same ids
    work = tmp_path / "w"
    git("clone", "-q", str(tmp_path / "g.git"), str(work), cwd=tmp_path)
    (work / "dir" / "f00002").write_text("two\n")
    git("commit", "-qam", "two", cwd=work)
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    fetch(GitBackend.open(tmp_path / "g.git"), pack, {"refs/heads/main": "refs/heads/main"})
    assert store.get("dir/f00002") == b"two\n"
    assert store.tree().hex() == git("rev-parse", "HEAD^{tree}", cwd=work).decode().strip()
    imported = clone(tmp_path / "g.git", tmp_path / "p2", pack=True)
    assert isinstance(imported, PackBackend)
    assert imported.get_ref("refs/heads/feature") == pack.get_ref("refs/heads/feature")
    # and a push from the pack backend to a Git repository
    store.set("new", b"!", at(5))
    push(pack, GitBackend.open(tmp_path / "g.git"), "main")
    git("fsck", "--strict", "--no-dangling", cwd=tmp_path / "g.git")
    assert git("cat-file", "-p", "main:new", cwd=tmp_path / "g.git") == b"!"


@needs_git
def test_command_line_on_a_pack_backend(tmp_path: Path) -> None:
    p = str(tmp_path / "p")
    assert run(["-C", p, "init", "--pack"]) == 0
    assert run(["-C", p, "set", "a/b", "hello"]) == 0
    assert PackBackend.is_pack(p)
    assert run(["clone", p, str(tmp_path / "g.git")]) == 0
    assert git("cat-file", "-p", "main:a/b", cwd=tmp_path / "g.git") == b"hello"
    assert run(["clone", "--pack", str(tmp_path / "g.git"), str(tmp_path / "q")]) == 0
    assert Store(Repo(PackBackend(tmp_path / "q"))).get("a/b") == b"hello"


@needs_git
def test_killed_writer_loses_no_acknowledged_commit(tmp_path: Path) -> None:
    root = tmp_path / "crash"
    PackBackend(root).close()
    rounds = int(os.environ.get("IRMIN_CRASH_ROUNDS", "200"))
    acknowledged = kill_writer_repeatedly(root, "pack", rounds, seed=11)
    assert acknowledged  # some writers lived long enough to commit
    backend = PackBackend(root)
    store = Store(Repo(backend), "main")
    history = {h.hex() for h in store.history(None)}
    assert set(acknowledged.values()) <= history
    for i in acknowledged:
        assert store.get(f"k/{i % 7}/{i}") == b"%d" % i * 100
    clone(root, tmp_path / "g.git")  # every object of the history is complete
    git("fsck", "--strict", "--no-dangling", cwd=tmp_path / "g.git")
    backend.close()


NAMES = st.sampled_from([f"n{i:03d}" for i in range(400)] + ["n0", "n0-x", "n0.y", "n1!"])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(
        st.tuples(NAMES, st.sampled_from(["set", "tree", "remove"]), st.integers(0, 3)),
        min_size=1,
        max_size=30,
    )
)
def test_inode_updates_give_gits_ids(ops: list[tuple[str, str, int]]) -> None:
    """Changes to a large directory, made chunk by chunk (small chunks here, so the
    boundaries move), give the ids a plain Git tree gives."""
    import mirage.irmin._packbackend as pb

    old = pb.CHUNK
    pb.CHUNK = 8
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pack = Store(Repo(PackBackend(Path(tmp) / "p")))
            plain = Store(Repo(MemoryBackend()))
            start: dict[str, bytes | None] = {
                f"d/n{i:03d}/x" if i % 10 == 1 else f"d/n{i:03d}": b"%d" % i
                for i in range(400)
                if i % 7
            }
            for s in (pack, plain):
                s.batch(start, at(1))
            first = pack.repo.find_entry(pack.tree(), ("d",))
            assert first is not None and pack.repo.backend.is_inode(first.oid)  # type: ignore[attr-defined]
            for t, (name, op, v) in enumerate(ops, 2):
                for s in (pack, plain):
                    try:
                        if op == "set":
                            s.set(f"d/{name}", b"v%d" % v, at(t))
                        elif op == "tree":
                            s.set(f"d/{name}/k{v}", b"w", at(t))
                        else:
                            s.remove(f"d/{name}", at(t))
                    except PathError:
                        pass
                assert pack.tree() == plain.tree()
                assert pack.find(f"d/{name}") == plain.find(f"d/{name}")
            entry = pack.repo.find_entry(pack.tree(), ("d",))
            assert entry is not None
            assert pack.repo.backend.read(entry.oid)[1] == plain.repo.backend.read(entry.oid)[1]
    finally:
        pb.CHUNK = old
