"""What the file device does with the host's files."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from mirage.block import FileBlock
from mirage.core.testing import BlockTests, run
from mirage.core.types import BlockError, BlockInfo


class TestFileBlock(BlockTests):
    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.count = itertools.count()

    async def make_block(
        self, sectors: int, sector_size: int, read_write: bool = True
    ) -> FileBlock:
        path = str(self.tmp / f"disk{next(self.count)}.img")
        size = sectors * sector_size
        if not read_write:
            await (await FileBlock.connect(path=path, size=size)).disconnect()
        return await FileBlock.connect(
            path=path, sector_size=sector_size, read_only=not read_write, size=size
        )


class TestFileBlock4k(TestFileBlock):
    sector_size = 4096


def connect(path: Path, **params: object) -> FileBlock:
    return run(FileBlock.connect(path=str(path), **params))  # type: ignore[arg-type]


def test_size_creates_a_sparse_file(tmp_path: Path) -> None:
    disk = connect(tmp_path / "disk.img", size=1 << 20)
    assert run(disk.info()) == BlockInfo(True, 512, 2048)
    run(disk.disconnect())
    assert (tmp_path / "disk.img").stat().st_size == 1 << 20


def test_size_leaves_an_existing_file_alone(tmp_path: Path) -> None:
    (tmp_path / "disk.img").write_bytes(b"\1" * 4096)
    disk = connect(tmp_path / "disk.img", size=1 << 20)
    assert run(disk.info()).size_sectors == 8
    assert run(disk.read(0, 1)) == b"\1" * 512
    run(disk.disconnect())


def test_missing_file_without_size(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        connect(tmp_path / "missing.img")


def test_partial_last_sector_is_unused(tmp_path: Path) -> None:
    (tmp_path / "disk.img").write_bytes(bytes(1000))
    disk = connect(tmp_path / "disk.img")
    assert run(disk.info()).size_sectors == 1
    run(disk.disconnect())


def test_writes_persist(tmp_path: Path) -> None:
    disk = connect(tmp_path / "disk.img", size=8192, sector_size=4096)
    run(disk.write(1, b"x" * 4096))
    run(disk.disconnect())
    assert (tmp_path / "disk.img").read_bytes() == bytes(4096) + b"x" * 4096
    again = connect(tmp_path / "disk.img", sector_size=4096, read_only=True)
    assert run(again.read(1, 1)) == b"x" * 4096
    run(again.disconnect())
    run(again.disconnect())


def test_truncated_under_us(tmp_path: Path) -> None:
    disk = connect(tmp_path / "disk.img", size=4096)
    os.truncate(tmp_path / "disk.img", 1024)
    with pytest.raises(BlockError, match="truncated"):
        run(disk.read(0, 8))
    run(disk.disconnect())


def test_disconnected(tmp_path: Path) -> None:
    disk = connect(tmp_path / "disk.img", size=4096)
    run(disk.disconnect())
    with pytest.raises(BlockError):
        run(disk.read(0, 1))


def test_not_a_file(tmp_path: Path) -> None:
    with pytest.raises((BlockError, IsADirectoryError)):
        connect(tmp_path)
    with pytest.raises(BlockError):
        connect(tmp_path, read_only=True)
