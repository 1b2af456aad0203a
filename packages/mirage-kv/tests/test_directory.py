"""The directory store stays inside its root and writes atomically."""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from mirage.core.testing import KvRwTests, run
from mirage.core.types import KvDictionaryExpected, KvError, KvKind, KvNotFound
from mirage.kv import DirectoryKv


def write_tree(root: Path, contents: Mapping[str, bytes]) -> Path:
    for key, data in contents.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
    root.mkdir(parents=True, exist_ok=True)
    return root


class TestDirectoryKv(KvRwTests):
    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.count = itertools.count()

    async def make_kv_rw(self, contents: Mapping[str, bytes]) -> DirectoryKv:
        root = write_tree(self.tmp / f"store{next(self.count)}", contents)
        return await DirectoryKv.connect(root=str(root))


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """``root/`` with a file, a subdirectory and links in and out; ``outside/`` beside."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    (root / "sub" / "file").write_bytes(b"inside")
    (root / "link-out").symlink_to(outside / "secret")
    (root / "dir-out").symlink_to(outside)
    (root / "link-in").symlink_to(root / "sub" / "file")
    (root / "dir-in").symlink_to("sub")
    (root / "dangling").symlink_to(tmp_path / "nothing")
    return root


def connect(root: Path) -> DirectoryKv:
    return run(DirectoryKv.connect(root=str(root)))


def test_links_out_are_missing(layout: Path) -> None:
    kv = connect(layout)
    assert run(kv.list("")) == [
        ("dir-in", KvKind.DICTIONARY),
        ("link-in", KvKind.VALUE),
        ("sub", KvKind.DICTIONARY),
    ]
    for key in ("link-out", "dir-out", "dir-out/secret", "dangling"):
        assert run(kv.exists(key)) is None, key
        with pytest.raises(KvNotFound):
            run(kv.get(key))


def test_links_in_are_followed(layout: Path) -> None:
    kv = connect(layout)
    assert run(kv.get("link-in")) == b"inside"
    assert run(kv.get("dir-in/file")) == b"inside"
    assert run(kv.list("dir-in")) == [("file", KvKind.VALUE)]


def test_dot_dot_never_escapes(layout: Path) -> None:
    kv = connect(layout / "sub")
    for key in ("../dir-out/secret", "..", "file/../../link-out", "./file"):
        assert run(kv.exists(key)) is None, key
        with pytest.raises(KvNotFound):
            run(kv.get(key))
    for key in ("../escape", "a/../../escape", "."):
        with pytest.raises(KvError):
            run(kv.set(key, b"no"))
    assert sorted(p.name for p in layout.parent.iterdir()) == ["outside", "root"]


def test_writes_do_not_go_through_links_out(layout: Path) -> None:
    kv = connect(layout)
    with pytest.raises(KvDictionaryExpected):
        run(kv.set("dir-out/planted", b"no"))
    with pytest.raises(KvDictionaryExpected):
        run(kv.set_partial("dir-out/secret", 0, b"no"))
    with pytest.raises(KvNotFound):
        run(kv.remove("dir-out"))
    with pytest.raises(KvNotFound):
        run(kv.rename("link-out", "stolen"))
    run(kv.set("link-out", b"replaces the link"))
    assert not (layout / "link-out").is_symlink()
    assert (layout.parent / "outside" / "secret").read_bytes() == b"secret"
    assert sorted(p.name for p in (layout.parent / "outside").iterdir()) == ["secret"]


def test_remove_link_keeps_target(layout: Path) -> None:
    kv = connect(layout)
    run(kv.remove("dir-in"))
    run(kv.remove("link-in"))
    assert (layout / "sub" / "file").read_bytes() == b"inside"
    run(kv.remove(""))
    assert sorted(p.name for p in layout.iterdir()) == []
    assert (layout.parent / "outside" / "secret").exists()


def test_writes_replace_whole_files(tmp_path: Path) -> None:
    kv = connect(tmp_path)
    run(kv.set("a/b", b"one"))
    with open(tmp_path / "a" / "b", "rb") as before:
        run(kv.set("a/b", b"two"))
        run(kv.set_partial("a/b", 5, b"!"))
        assert before.read() == b"one"
    assert (tmp_path / "a" / "b").read_bytes() == b"two\0\0!"
    assert os.listdir(tmp_path / "a") == ["b"]


def test_digest_and_mtime_are_the_files(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"content")
    os.utime(tmp_path / "f", (1_000_000_000, 1_234_567_890.5))
    kv = connect(tmp_path)
    assert run(kv.digest("f")) == hashlib.sha256(b"content").digest()
    assert run(kv.last_modified("f")) == 1_234_567_890.5


def test_special_files_are_missing(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    kv = connect(tmp_path)
    assert run(kv.exists("fifo")) is None
    assert run(kv.list("")) == []


def test_root_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        connect(tmp_path / "missing")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        connect(tmp_path / "file")
