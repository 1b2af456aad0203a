"""The memory store."""

from __future__ import annotations

from collections.abc import Mapping

from mirage.core.testing import KvRwTests, run
from mirage.core.types import KvKind
from mirage.kv import MemoryKv


class TestMemoryKv(KvRwTests):
    async def make_kv_rw(self, contents: Mapping[str, bytes]) -> MemoryKv:
        return await MemoryKv.connect(contents=contents)


def test_starts_empty() -> None:
    kv = run(MemoryKv.connect())
    assert run(kv.list("")) == []


def test_emptied_dictionaries_stay() -> None:
    kv = run(MemoryKv.connect(contents={"/a//b": b"x"}))
    run(kv.remove("a/b"))
    assert run(kv.exists("a")) is KvKind.DICTIONARY


def test_values_are_copied() -> None:
    data = bytearray(b"abc")
    kv = run(MemoryKv.connect())
    run(kv.set("k", data))  # type: ignore[arg-type]
    data[0] = ord("X")
    assert run(kv.get("k")) == b"abc"
