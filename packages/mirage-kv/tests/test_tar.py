"""The tar store: member paths, implied directories, and any bytes at connect."""

from __future__ import annotations

import io
import itertools
import tarfile
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mirage.core.testing import KvRoTests, run
from mirage.core.types import KvKind
from mirage.kv import TarFormatError, TarKv

D, V = KvKind.DICTIONARY, KvKind.VALUE


def tar_bytes(
    contents: Mapping[str, bytes], mode: str = "w", format: int = tarfile.PAX_FORMAT
) -> bytes:
    """An archive of ``contents`` (compressed as ``mode`` says: ``"w:gz"``...)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=format) as archive:  # type: ignore[call-overload]
        for key, data in contents.items():
            info = tarfile.TarInfo(key)
            info.size = len(data)
            info.mtime = 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class TestTarKv(KvRoTests):
    mode = "w"

    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.count = itertools.count()

    async def make_kv_ro(self, contents: Mapping[str, bytes]) -> TarKv:
        path = self.tmp / f"archive{next(self.count)}.tar"
        path.write_bytes(tar_bytes(contents, self.mode))
        return await TarKv.connect(path=str(path))


class TestTarGzKv(TestTarKv):
    mode = "w:gz"


def archive(*members: tarfile.TarInfo, data: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for member in members:
            content = (data or {}).get(member.name, b"")
            if member.isfile():
                member.size = len(content)
            tar.addfile(member, io.BytesIO(content) if member.isfile() else None)
    return buf.getvalue()


def member(
    name: str, type_: bytes = tarfile.REGTYPE, linkname: str = "", mtime: int = 10
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.linkname = linkname
    info.mtime = mtime
    return info


def test_implied_directories_and_prefixes() -> None:
    kv = TarKv.from_bytes(tar_bytes({"./a/b/c": b"c", "/d": b"d", "a//e": b"e"}))
    assert run(kv.list("")) == [("a", D), ("d", V)]
    assert run(kv.list("a")) == [("b", D), ("e", V)]
    assert run(kv.get("a/b/c")) == b"c"


def test_directory_members_and_mtimes() -> None:
    kv = TarKv.from_bytes(archive(member("empty/", tarfile.DIRTYPE, mtime=5), member("f", mtime=7)))
    assert run(kv.exists("empty")) is D
    assert run(kv.list("empty")) == []
    assert run(kv.last_modified("empty")) == 5.0
    assert run(kv.last_modified("f")) == 7.0


def test_links_and_special_files() -> None:
    data = archive(
        member("file"),
        member("hard", tarfile.LNKTYPE, linkname="file"),
        member("soft", tarfile.SYMTYPE, linkname="file"),
        member("fifo", tarfile.FIFOTYPE),
        data={"file": b"content"},
    )
    kv = TarKv.from_bytes(data)
    assert run(kv.list("")) == [("file", V), ("hard", V)]
    assert run(kv.get("hard")) == b"content"


def test_later_member_replaces_earlier() -> None:
    data = archive(member("f"), member("f"), data={"f": b"two"})
    assert run(TarKv.from_bytes(data).get("f")) == b"two"


@pytest.mark.parametrize(
    "members",
    [
        [member("../escape")],
        [member("a/../../escape")],
        [member("ok/../x")],
        [member("a"), member("a/b")],
        [member("a/b"), member("a")],
        [member("a"), member("a/", tarfile.DIRTYPE)],
        [member("hard", tarfile.LNKTYPE, linkname="missing")],
    ],
)
def test_bad_archives(members: list[tarfile.TarInfo]) -> None:
    with pytest.raises(TarFormatError):
        TarKv.from_bytes(archive(*members))


def test_connect_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "site.tar.xz"
    path.write_bytes(tar_bytes({"index.html": b"hi"}, "w:xz"))
    kv = run(TarKv.connect(path=str(path)))
    assert run(kv.get("index.html")) == b"hi"
    (tmp_path / "bad.tar").write_bytes(b"not a tar archive" * 100)
    with pytest.raises(TarFormatError):
        run(TarKv.connect(path=str(tmp_path / "bad.tar")))


def serve_or_refuse(data: bytes) -> None:
    """Any bytes give a store that answers, or TarFormatError."""
    try:
        kv = TarKv.from_bytes(data)
    except TarFormatError:
        return
    todo = [""]
    while todo:
        key = todo.pop()
        for name, kind in run(kv.list(key)):
            full = f"{key}/{name}" if key else name
            if kind is D:
                todo.append(full)
            else:
                assert len(run(kv.get(full))) == run(kv.size(full))


VALID = [
    tar_bytes({"a/b": b"x" * 700, "c": b"y"}),
    tar_bytes({"a/b": b"x" * 700, "c": b"y"}, "w:gz"),
    tar_bytes({"a/b": b"x" * 700}, "w:bz2"),
    archive(
        member("d/", tarfile.DIRTYPE), member("d/h", tarfile.LNKTYPE, linkname="c"), member("c")
    ),
    tar_bytes({"long/" + "n" * 150: b"pax header", "\u00e9t\u00e9": b"utf-8 name"}),
    tar_bytes({"long/" + "n" * 150: b"gnu header"}, format=tarfile.GNU_FORMAT),
]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000))
@example(b"")
@example(b"\0" * 1024)
def test_arbitrary_bytes(data: bytes) -> None:
    serve_or_refuse(data)


@settings(max_examples=300, deadline=None)
@given(
    original=st.sampled_from(VALID),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 10_000),
)
def test_damaged_archives(original: bytes, edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(original)
    for position, byte in edits:
        data[position % len(data)] = byte
    serve_or_refuse(bytes(data[: max(cut, 1)]) if cut < len(data) else bytes(data))
