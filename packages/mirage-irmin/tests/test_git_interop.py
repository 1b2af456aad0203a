"""Against the real ``git``: it accepts what we write (``fsck --strict``, ``log``,
``show``, ``checkout``), we read what it writes, our merges match ``merge-tree``,
sync moves history both ways, and a writer killed at random keeps the repository
sound."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import git, kill_writer_repeatedly, needs_git

from mirage.irmin import (
    GitBackend,
    Info,
    MergeConflict,
    NotFastForward,
    ObjectMissing,
    ObjectType,
    Repo,
    Store,
    clone,
    fetch,
    pack_for,
    push,
)
from mirage.irmin._errors import CorruptObject, DecodeError
from mirage.irmin._objects import encode_loose

pytestmark = needs_git


def at(t: int, message: str = "") -> Info:
    return Info(
        date=1_700_000_000 + t,
        message=message or f"change {t}",
        author="Irmin",
        email="irmin@example.com",
    )


def our_repo(path: Path) -> Store:
    return Store(Repo(GitBackend.init(path, bare=False)), "main")


def test_git_reads_our_commits(tmp_path: Path) -> None:
    s = our_repo(tmp_path / "w")
    s.set("README", b"hello\n", at(1))
    s.set("src/a/b.txt", b"b\n", at(2))
    s.batch({"src/c": b"c\n", "README": b"hello again\n"}, at(3, "third\n\nwith a body"))
    w = tmp_path / "w"
    git("fsck", "--strict", "--no-dangling", cwd=w)
    assert git("log", "--format=%an <%ae> %at %s", cwd=w).decode().splitlines() == [
        "Irmin <irmin@example.com> 1700000003 third",
        "Irmin <irmin@example.com> 1700000002 change 2",
        "Irmin <irmin@example.com> 1700000001 change 1",
    ]
    assert git("show", "HEAD:src/a/b.txt", cwd=w) == b"b\n"
    git("checkout", "-q", "-f", "main", cwd=w)
    assert (w / "README").read_bytes() == b"hello again\n"
    assert (w / "src/a/b.txt").read_bytes() == b"b\n"
    assert git("status", "--porcelain", cwd=w) == b""


def test_we_read_what_git_commits(tmp_path: Path) -> None:
    w = tmp_path / "g"
    w.mkdir()
    git("init", "-q", "-b", "main", cwd=w)
    (w / "dir").mkdir()
    (w / "dir" / "x").write_bytes(b"x\n")
    (w / "tool").write_bytes(b"#!/bin/sh\n")
    (w / "tool").chmod(0o755)
    os.symlink("dir/x", w / "link")
    git("add", "-A", cwd=w)
    git("commit", "-q", "-m", "from git", cwd=w)
    git("pack-refs", "--all", cwd=w)
    s = Store(Repo(GitBackend.open(w)), "main")
    assert s.get("dir/x") == b"x\n" and s.get("link") == b"dir/x"
    assert s.list() == [("dir", "node"), ("link", "contents"), ("tool", "contents")]
    head = s.head()
    assert head is not None and head.hex() == git("rev-parse", "HEAD", cwd=w).decode().strip()
    commit = s.repo.read_commit(head)
    assert commit.author.name == "A U Thor" and commit.author.tz == "+0100"
    # We commit on top of git's packed ref; git sees it.
    s.set("dir/y", b"y\n", at(5))
    git("fsck", "--strict", cwd=w)
    assert git("log", "--format=%s", cwd=w).decode().splitlines() == ["change 5", "from git"]
    modes = git("ls-tree", "HEAD", cwd=w).decode()
    assert "100755 blob" in modes and "120000 blob" in modes


def test_merges_match_git_merge_tree(tmp_path: Path) -> None:
    w = tmp_path / "m"
    s = our_repo(w)
    s.batch({f"d{i}/f{j}": b"%d %d\n" % (i, j) for i in range(3) for j in range(4)}, at(1))
    other = s.clone("other")
    s.batch({"d0/f0": b"ours\n", "d1/new": b"new\n", "d2/f3": None}, at(2))
    other.batch({"d0/f1": b"theirs\n", "d3/x": b"x\n", "d1/f2": None}, at(3))
    ours_head, theirs_head = s.head(), other.head()
    assert ours_head and theirs_head
    merged = s.merge_with_branch("other", at(4))
    assert merged is not None
    expected = git("merge-tree", "--write-tree", "main~0^1", "other", cwd=w).decode().split()[0]
    assert s.repo.read_commit(merged).tree.hex() == expected
    base = git("merge-base", ours_head.hex(), theirs_head.hex(), cwd=w).decode().strip()
    assert [c.hex() for c in s.repo.lcas(ours_head, theirs_head)] == [base]
    git("fsck", "--strict", cwd=w)
    # A conflicting merge: git reports the same path.
    s.set("d0/f1", b"ours too\n", at(5))
    other.set("d0/f1", b"theirs again\n", at(5))
    with pytest.raises(MergeConflict) as info:
        s.merge_with_branch("other", at(6))
    assert [c.path for c in info.value.conflicts] == ["d0/f1"]
    result = subprocess.run(
        ["git", "merge-tree", "--write-tree", "--name-only", "main", "other"],
        cwd=w,
        capture_output=True,
    )
    assert result.returncode == 1 and b"d0/f1" in result.stdout


def test_bad_objects_are_named(tmp_path: Path) -> None:
    g = GitBackend.init(tmp_path / "r.git")
    oid = g.write(ObjectType.BLOB, b"good")
    path = tmp_path / "r.git/objects" / oid.hex()[:2] / oid.hex()[2:]
    path.chmod(0o644)
    path.write_bytes(encode_loose(ObjectType.BLOB, b"evil"))
    with pytest.raises(CorruptObject, match=oid.hex()):
        g.read(oid)
    path.write_bytes(b"garbage")
    with pytest.raises(DecodeError, match=oid.hex()):
        g.read(oid)
    with pytest.raises(ObjectMissing, match="00" * 20):
        g.read(b"\0" * 20)


def test_clone_fetch_push_with_git(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    git("init", "-q", "-b", "main", cwd=src)
    for i in range(5):
        (src / f"f{i}").write_text(f"{i}\n" * 50)
        git("add", "-A", cwd=src)
        git("commit", "-q", "-m", f"c{i}", cwd=src)
    git("tag", "-a", "-m", "tag", "v1", cwd=src)
    git("gc", "-q", cwd=src)
    ours = clone(src, tmp_path / "ours.git")
    git("fsck", "--strict", cwd=tmp_path / "ours.git")
    assert ours.get_ref("refs/heads/main") is not None
    assert ours.list_refs() == GitBackend.open(src).list_refs()
    # We commit and push back into a bare repository made by git.
    git("init", "-q", "--bare", "-b", "main", "remote.git", cwd=tmp_path)
    remote = GitBackend(tmp_path / "remote.git")
    store = Store(Repo(ours), "main")
    store.set("ours", b"ours\n", at(1))
    push(ours, remote, "main")
    git("fsck", "--strict", cwd=tmp_path / "remote.git")
    assert git("log", "--format=%s", "-1", "main", cwd=tmp_path / "remote.git") == b"change 1\n"
    # git clones what we pushed, commits and pushes; we fetch it.
    git("clone", "-q", str(tmp_path / "remote.git"), "work", cwd=tmp_path)
    (tmp_path / "work" / "theirs").write_text("theirs\n")
    git("add", "-A", cwd=tmp_path / "work")
    git("commit", "-q", "-m", "from git", cwd=tmp_path / "work")
    git("push", "-q", "origin", "main", cwd=tmp_path / "work")
    fetched = fetch(remote, ours)
    assert (
        fetched["refs/remotes/origin/main"].hex()
        == git("rev-parse", "main", cwd=tmp_path / "remote.git").decode().strip()
    )
    store.merge_with_commit(fetched["refs/remotes/origin/main"], at(2))
    assert store.get("theirs") == b"theirs\n"
    # Diverged history is refused unless forced.
    store.set("again", b"1", at(3))
    git("commit", "-q", "--allow-empty", "-m", "diverge", cwd=tmp_path / "work")
    git("push", "-q", "origin", "main", cwd=tmp_path / "work")
    with pytest.raises(NotFastForward):
        push(ours, remote, "main")
    push(ours, remote, "main", force=True)
    git("fsck", "--strict", cwd=tmp_path / "remote.git")


def test_git_index_pack_accepts_our_history_pack(tmp_path: Path) -> None:
    s = our_repo(tmp_path / "w")
    for i in range(10):
        s.set(f"k{i % 3}", b"value %d\n" % i * 30, at(i))
    head = s.head()
    assert head is not None
    pack = pack_for(s.repo.backend, [head])
    git("init", "-q", "--bare", "empty.git", cwd=tmp_path)
    git("index-pack", "--stdin", "--strict", cwd=tmp_path / "empty.git", input=pack)
    git("update-ref", "refs/heads/main", head.hex(), cwd=tmp_path / "empty.git")
    git("fsck", "--strict", cwd=tmp_path / "empty.git")
    assert len(git("rev-list", "main", cwd=tmp_path / "empty.git").split()) == 10


def test_killed_writer_keeps_repository_sound(tmp_path: Path) -> None:
    repo = tmp_path / "crash.git"
    GitBackend.init(repo)
    rounds = int(os.environ.get("IRMIN_CRASH_ROUNDS", "200"))
    acknowledged = kill_writer_repeatedly(repo, "git", rounds, seed=7)
    assert acknowledged  # some writers lived long enough to commit
    git("fsck", "--strict", "--no-dangling", cwd=repo)
    reachable = set(git("rev-list", "main", cwd=repo).decode().split())
    assert set(acknowledged.values()) <= reachable
    store = Store(Repo(GitBackend(repo)), "main")
    for i in acknowledged:
        assert store.get(f"k/{i % 7}/{i}") == b"%d" % i * 100


def test_small_packs_are_consolidated(tmp_path: Path) -> None:
    backend = GitBackend.init(tmp_path / "p.git", consolidate_at=8)
    s = Store(Repo(backend), "main")
    for i in range(30):
        s.set(f"a/b{i % 4}/k{i}", b"%d" % i, at(i))
    packs = list((tmp_path / "p.git/objects/pack").glob("*.idx"))
    assert 1 <= len(packs) < 8
    git("fsck", "--strict", "--no-dangling", cwd=tmp_path / "p.git")
    assert len(git("rev-list", "main", cwd=tmp_path / "p.git").split()) == 30
    fresh = Store(Repo(GitBackend(tmp_path / "p.git")), "main")
    assert [fresh.get(f"a/b{i % 4}/k{i}") for i in range(30)] == [b"%d" % i for i in range(30)]
    loose = Store(Repo(GitBackend(tmp_path / "p.git", small_packs=False)), "main")
    loose.set("loose", b"x", at(31))
    assert list((tmp_path / "p.git/objects").glob("??/*"))
    git("fsck", "--strict", "--no-dangling", cwd=tmp_path / "p.git")


def test_tags_are_git_tags(tmp_path: Path) -> None:
    s = our_repo(tmp_path / "t")
    s.set("a", b"1", at(1))
    annotated = s.tag("v1.0", at(2, "release 1.0"))
    s.set("a", b"2", at(3))
    light = s.tag("light", at(4), annotated=False)
    w = tmp_path / "t"
    git("fsck", "--strict", "--no-dangling", cwd=w)
    assert git("cat-file", "-t", "v1.0", cwd=w) == b"tag\n"
    assert annotated.hex() == git("rev-parse", "v1.0", cwd=w).decode().strip()
    assert git("cat-file", "-p", "v1.0", cwd=w).decode().endswith("\nrelease 1.0\n")
    assert git("describe", "--tags", "main~1", cwd=w) == b"v1.0\n"
    assert light == s.head()
    from mirage.irmin import RefUpdateRejected

    with pytest.raises(RefUpdateRejected):
        s.tag("v1.0", at(5))


def test_a_writer_killed_inside_a_fresh_lock_leaves_no_ref(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mirage.irmin import _git

    repo = tmp_path / "fresh.git"
    backend = GitBackend.init(repo)
    store = Store(Repo(backend), "main")
    store.set("a", b"1", at(1))
    heads = repo / "refs" / "heads"
    lock_path = heads / "main.lock"
    fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    lock = _git._Lock(lock_path, heads / "main", fd)

    def killed(src: object, dst: object) -> None:
        raise KeyboardInterrupt  # the writer dies between making its new inode and renaming it

    monkeypatch.setattr(_git.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        lock._fresh(os.dup(fd), b"0" * 40 + b"\n", False)
    monkeypatch.undo()
    os.close(fd)
    lock_path.unlink()  # the lock itself: git's own rule, a stale lock blocks the ref
    assert len(list(heads.iterdir())) == 2  # main and what the killed writer left
    git("fsck", "--strict", "--no-dangling", cwd=repo)
    assert set(backend.list_refs()) == {"refs/heads/main"}
