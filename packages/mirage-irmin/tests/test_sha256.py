"""SHA-256 repositories (``extensions.objectFormat = sha256``): what we write, git
accepts (``fsck --strict``, ``log``, ``show``, ``verify-pack``); what git writes,
loose or packed with deltas, we read with the same ids."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import git, needs_git
from hypothesis import given
from hypothesis import strategies as st

from mirage.irmin import (
    DecodeError,
    GitBackend,
    Info,
    IrminError,
    MemoryBackend,
    ObjectType,
    Repo,
    Store,
    clone,
    repack,
)
from mirage.irmin import fetch as fetch_between
from mirage.irmin._objects import decode_object


@needs_git
@pytest.mark.parametrize("small_packs", [True, False])
def test_git_reads_our_sha256_repository(tmp_path: Path, small_packs: bool) -> None:
    root = tmp_path / "r.git"
    backend = GitBackend.init(root, object_format="sha256", small_packs=small_packs)
    assert GitBackend.open(root).object_format == "sha256"
    store = Store(Repo(backend))
    store.set("a/b", b"hello\n", Info(1, "first"))
    store.batch({"a/c": b"x", "d": b"y" * 500}, Info(2, "second"))
    dev = store.clone("dev")
    dev.set("e", b"on dev", Info(3, "on dev"))
    store.set("f", b"on main", Info(3, "on main"))
    store.merge_with_branch("dev", Info(4, "merge"))
    store.tag("v1", Info(5, "a tag"))
    head = store.head()
    assert head is not None and len(head) == 32
    git("fsck", "--strict", cwd=root)
    assert git("rev-parse", "main", cwd=root).strip() == head.hex().encode()
    assert git("show", "main:a/b", cwd=root) == b"hello\n"
    assert git("rev-list", "--count", "main", cwd=root) == b"5\n"
    subjects = git("log", "--format=%s", "main", cwd=root).splitlines()
    assert subjects[0] == b"merge" and subjects[-1] == b"first"
    assert git("rev-parse", "main^{tree}", cwd=root).strip() == store.tree().hex().encode()
    assert git("cat-file", "-t", "v1", cwd=root) == b"tag\n"
    stats = repack(GitBackend.open(root))
    assert stats.objects >= 10
    idx = next((root / "objects/pack").glob("*.idx"))
    git("verify-pack", "-v", str(idx), cwd=root)
    git("fsck", "--strict", cwd=root)
    assert Store(Repo(GitBackend.open(root))).get("d") == b"y" * 500


@needs_git
def test_we_read_git_sha256_repositories(tmp_path: Path) -> None:
    work = tmp_path / "w"
    git("init", "-q", "--object-format=sha256", "-b", "main", str(work), cwd=tmp_path)
    base = b"".join(b"line %d\n" % i for i in range(300))
    for i in range(8):
        (work / "dir").mkdir(exist_ok=True)
        (work / "dir" / "file.txt").write_bytes(base + b"change %d\n" % i)
        (work / f"f{i}").write_bytes(b"%d\n" % i)
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", f"c{i}", cwd=work)
    for packed in (False, True):
        if packed:
            git("gc", "-q", "--aggressive", cwd=work)  # deltas, packed-refs
            assert not list((work / ".git/refs/heads").iterdir())
        backend = GitBackend.open(work)
        assert backend.object_format == "sha256"
        store = Store(Repo(backend))
        tree = git("rev-parse", "main^{tree}", cwd=work).strip().decode()
        assert store.tree().hex() == tree
        assert store.get("dir/file.txt") == base + b"change 7\n"
        assert len(store.history()) == 8
        assert [k for k, _ in store.list()] == ["dir", *(f"f{i}" for i in range(8))]
    store.set("ours", b"written by us", Info(100))
    git("fsck", "--strict", cwd=work)
    assert git("show", "main:ours", cwd=work) == b"written by us"
    # a rebuilt tree has git's id
    rebuilt = Repo(backend).tree_of_node(store.find_tree() or {})
    assert rebuilt == store.tree()


def test_formats_do_not_mix(tmp_path: Path) -> None:
    sha256 = GitBackend.init(tmp_path / "a.git", object_format="sha256")
    Store(Repo(sha256)).set("k", b"v", Info(1))
    with pytest.raises(IrminError):
        fetch_between(sha256, MemoryBackend(), {"refs/heads/main": "refs/heads/main"})
    copy = clone(tmp_path / "a.git", tmp_path / "b.git")
    assert copy.object_format == "sha256"
    assert Store(Repo(copy)).get("k") == b"v"
    mem = MemoryBackend(object_format="sha256")
    fetch_between(sha256, mem, {"refs/heads/main": "refs/heads/main"})
    assert Store(Repo(mem)).get("k") == b"v"
    with pytest.raises(ValueError):
        GitBackend.init(tmp_path / "c.git", object_format="md5")


@given(st.sampled_from(list(ObjectType)), st.binary(max_size=200))
def test_sha256_decoders_are_total(kind: ObjectType, body: bytes) -> None:
    try:
        decode_object(kind, body, "fuzz", "sha256")
    except DecodeError:
        pass
