"""Conformance tests of ``kv_ro`` and ``kv_rw`` stores.

The contract, in the terms of :mod:`mirage.core.types`, beyond the docstrings there:

- Keys are normalised with :func:`~mirage.core.types.kv_key` (``"/a//b/"`` is
  ``"a/b"``); ``"."`` and ``".."`` are names like any other, never navigation.
- Reading a key that does not exist, including a key below a value (``"a/x"`` when
  ``"a"`` is a value), raises :class:`KvNotFound`. ``get``, ``get_partial`` and
  ``size`` of a dictionary raise :class:`KvValueExpected`; ``list`` of a value raises
  :class:`KvDictionaryExpected`. ``digest`` and ``last_modified`` of a dictionary are
  left to the store.
- ``set`` and ``set_partial`` create missing parents. Writing at a dictionary (the
  root included) raises :class:`KvValueExpected`; writing below a value raises
  :class:`KvDictionaryExpected`. ``set_partial`` of a missing key creates it.
- ``remove`` of a dictionary removes everything below it; ``remove("")`` empties the
  store. Removing the last entry of a dictionary may keep or drop the dictionary.
- ``rename(source, dest)``: a missing source raises :class:`KvNotFound`; renaming a
  key to itself does nothing; moving a dictionary below itself raises a
  :class:`KvError`; a value replaces an existing value; any other existing ``dest``
  raises :class:`KvAlreadyPresent`; ``dest`` below a value raises
  :class:`KvDictionaryExpected`. Missing parents of ``dest`` are created.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from mirage.core.types import (
    KvAlreadyPresent,
    KvDictionaryExpected,
    KvError,
    KvKind,
    KvNotFound,
    KvRo,
    KvRw,
    KvValueExpected,
)

from ._kv_model import kv_rw_state_machine
from ._run import AsyncTests, async_test, disconnect

__all__ = ["KvRoTests", "KvRwTests", "SAMPLE"]

V = KvKind.VALUE
D = KvKind.DICTIONARY

SAMPLE: Mapping[str, bytes] = {
    "a": b"alpha",
    "b/c": b"",
    "b/d/e": b"0123456789",
    "b/d/f": b"alpha",
    "dir with space/h\u00e9.txt": "unicode name \u2713".encode(),
    "z": b"zeta",
}
"""The contents most read-only tests run against."""

LARGE = bytes(range(256)) * 1024


class KvRoTests(AsyncTests):
    """Subclass and implement :meth:`make_kv_ro` to check a ``kv_ro`` store."""

    async def make_kv_ro(self, contents: Mapping[str, bytes]) -> KvRo:
        """A connected store holding ``contents`` (full keys like ``"a/b/c"`` to values).

        Called once or more per test, inside the test's event loop; each call must
        give a fresh store. The kit disconnects it.
        """
        raise NotImplementedError

    @asynccontextmanager
    async def kv_ro(self, contents: Mapping[str, bytes] = SAMPLE) -> AsyncIterator[KvRo]:
        store = await self.make_kv_ro(dict(contents))
        try:
            yield store
        finally:
            await disconnect(store)

    @async_test
    async def test_exists(self) -> None:
        async with self.kv_ro() as kv:
            assert await kv.exists("a") is V
            assert await kv.exists("b") is D
            assert await kv.exists("b/d") is D
            assert await kv.exists("b/c") is V
            assert await kv.exists("missing") is None
            assert await kv.exists("b/missing") is None
            assert await kv.exists("a/below-a-value") is None

    @async_test
    async def test_root_is_a_dictionary(self) -> None:
        async with self.kv_ro() as kv:
            assert await kv.exists("") is D
            assert await kv.exists("/") is D
            with pytest.raises(KvValueExpected):
                await kv.get("")

    @async_test
    async def test_get(self) -> None:
        async with self.kv_ro() as kv:
            for key, value in SAMPLE.items():
                assert await kv.get(key) == value, key

    @async_test
    async def test_get_missing(self) -> None:
        async with self.kv_ro() as kv:
            for key in ("missing", "b/missing", "a/below-a-value", "b/d/e/f"):
                with pytest.raises(KvNotFound):
                    await kv.get(key)

    @async_test
    async def test_get_dictionary(self) -> None:
        async with self.kv_ro() as kv:
            for key in ("b", "b/d", "/b/"):
                with pytest.raises(KvValueExpected):
                    await kv.get(key)

    @async_test
    async def test_get_partial(self) -> None:
        async with self.kv_ro() as kv:
            assert await kv.get_partial("b/d/e", 0, 3) == b"012"
            assert await kv.get_partial("b/d/e", 3, 4) == b"3456"
            assert await kv.get_partial("b/d/e", 8, 10) == b"89"
            assert await kv.get_partial("b/d/e", 0, 10) == b"0123456789"
            assert await kv.get_partial("b/d/e", 5, 0) == b""
            assert await kv.get_partial("b/d/e", 10, 5) == b""
            assert await kv.get_partial("b/d/e", 100, 5) == b""
            assert await kv.get_partial("b/c", 0, 5) == b""

    @async_test
    async def test_get_partial_errors(self) -> None:
        async with self.kv_ro() as kv:
            with pytest.raises(KvNotFound):
                await kv.get_partial("missing", 0, 1)
            with pytest.raises(KvValueExpected):
                await kv.get_partial("b", 0, 1)

    @async_test
    async def test_large_value(self) -> None:
        async with self.kv_ro({"big": LARGE}) as kv:
            assert await kv.get("big") == LARGE
            assert await kv.size("big") == len(LARGE)
            assert await kv.get_partial("big", 100_000, 1000) == LARGE[100_000:101_000]

    @async_test
    async def test_list_root(self) -> None:
        async with self.kv_ro() as kv:
            expected = [("a", V), ("b", D), ("dir with space", D), ("z", V)]
            assert await kv.list("") == expected
            assert await kv.list("/") == expected

    @async_test
    async def test_list_nested(self) -> None:
        async with self.kv_ro() as kv:
            assert await kv.list("b") == [("c", V), ("d", D)]
            assert await kv.list("b/d") == [("e", V), ("f", V)]
            assert await kv.list("dir with space") == [("h\u00e9.txt", V)]

    @async_test
    async def test_list_sorted(self) -> None:
        names = ["m", "b", "a0", "a", "_x", "Q", "10", "9"]
        async with self.kv_ro({f"d/{n}": n.encode() for n in names}) as kv:
            assert await kv.list("d") == [(n, V) for n in sorted(names)]

    @async_test
    async def test_list_value(self) -> None:
        async with self.kv_ro() as kv:
            with pytest.raises(KvDictionaryExpected):
                await kv.list("a")
            with pytest.raises(KvDictionaryExpected):
                await kv.list("b/d/e")

    @async_test
    async def test_list_missing(self) -> None:
        async with self.kv_ro() as kv:
            with pytest.raises(KvNotFound):
                await kv.list("missing")
            with pytest.raises(KvNotFound):
                await kv.list("a/below-a-value")

    @async_test
    async def test_empty_store(self) -> None:
        async with self.kv_ro({}) as kv:
            assert await kv.exists("") is D
            assert await kv.list("") == []
            with pytest.raises(KvNotFound):
                await kv.get("a")

    @async_test
    async def test_size(self) -> None:
        async with self.kv_ro() as kv:
            assert await kv.size("b/d/e") == 10
            assert await kv.size("b/c") == 0
            assert await kv.size("dir with space/h\u00e9.txt") == len(
                SAMPLE["dir with space/h\u00e9.txt"]
            )
            with pytest.raises(KvNotFound):
                await kv.size("missing")
            with pytest.raises(KvValueExpected):
                await kv.size("b")

    @async_test
    async def test_digest(self) -> None:
        async with self.kv_ro() as kv:
            same = await kv.digest("a")
            assert isinstance(same, bytes)
            assert same
            assert await kv.digest("b/d/f") == same
            assert await kv.digest("z") != same
            assert await kv.digest("b/c") != same
            assert await kv.digest("b/d/e") != await kv.digest("z")
            with pytest.raises(KvNotFound):
                await kv.digest("missing")

    @async_test
    async def test_last_modified(self) -> None:
        async with self.kv_ro() as kv:
            for key in SAMPLE:
                when = await kv.last_modified(key)
                assert isinstance(when, float), key
                assert math.isfinite(when)
            with pytest.raises(KvNotFound):
                await kv.last_modified("missing")

    @async_test
    async def test_key_normalisation(self) -> None:
        async with self.kv_ro() as kv:
            assert await kv.get("/a") == b"alpha"
            assert await kv.get("b//d/e") == b"0123456789"
            assert await kv.get("/b/d/e/") == b"0123456789"
            assert await kv.exists("b/d/") is D
            assert await kv.list("//b") == [("c", V), ("d", D)]
            assert await kv.size("//b/d//e") == 10

    @async_test
    async def test_dot_segments_are_names(self) -> None:
        async with self.kv_ro() as kv:
            for key in ("b/../a", "./a", "b/./c", "..", "../a"):
                assert await kv.exists(key) is None, key
                with pytest.raises(KvNotFound):
                    await kv.get(key)


class KvRwTests(KvRoTests):
    """Subclass and implement :meth:`make_kv_rw` to check a ``kv_rw`` store.

    It runs the read-only tests too (on stores made by :meth:`make_kv_rw`) and the
    :class:`~mirage.core.testing.KvRwStateMachine` with ``state_machine_settings``.
    """

    state_machine_settings: ClassVar[settings] = settings(
        max_examples=50,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.differing_executors, HealthCheck.too_slow],
    )

    async def make_kv_rw(self, contents: Mapping[str, bytes]) -> KvRw:
        """A connected, writable store holding ``contents``; a fresh one each call."""
        raise NotImplementedError

    async def make_kv_ro(self, contents: Mapping[str, bytes]) -> KvRo:
        return await self.make_kv_rw(contents)

    @asynccontextmanager
    async def kv_rw(self, contents: Mapping[str, bytes] = SAMPLE) -> AsyncIterator[KvRw]:
        store = await self.make_kv_rw(dict(contents))
        try:
            yield store
        finally:
            await disconnect(store)

    @async_test
    async def test_set(self) -> None:
        async with self.kv_rw({}) as kv:
            await kv.set("k", b"value")
            assert await kv.get("k") == b"value"
            assert await kv.exists("k") is V
            assert await kv.list("") == [("k", V)]

    @async_test
    async def test_set_creates_parents(self) -> None:
        async with self.kv_rw({}) as kv:
            await kv.set("x/y/z", b"deep")
            assert await kv.exists("x") is D
            assert await kv.exists("x/y") is D
            assert await kv.list("x") == [("y", D)]
            assert await kv.get("/x//y/z/") == b"deep"

    @async_test
    async def test_overwrite(self) -> None:
        async with self.kv_rw() as kv:
            await kv.set("b/d/e", b"longer than before, much longer")
            await kv.set("b/d/e", b"short")
            assert await kv.get("b/d/e") == b"short"
            assert await kv.size("b/d/e") == 5
            await kv.set("b/d/e", b"")
            assert await kv.get("b/d/e") == b""

    @async_test
    async def test_set_over_dictionary(self) -> None:
        async with self.kv_rw() as kv:
            for key in ("b", "b/d", "", "/"):
                with pytest.raises(KvValueExpected):
                    await kv.set(key, b"no")
            assert await kv.get("b/d/e") == b"0123456789"

    @async_test
    async def test_set_below_value(self) -> None:
        async with self.kv_rw() as kv:
            with pytest.raises(KvDictionaryExpected):
                await kv.set("a/x", b"no")
            with pytest.raises(KvDictionaryExpected):
                await kv.set("b/d/e/x/y", b"no")
            assert await kv.get("a") == b"alpha"

    @async_test
    async def test_set_partial(self) -> None:
        async with self.kv_rw({"k": b"hello world"}) as kv:
            await kv.set_partial("k", 6, b"WORLD")
            assert await kv.get("k") == b"hello WORLD"
            await kv.set_partial("k", 9, b"LD!")
            assert await kv.get("k") == b"hello WORLD!"
            await kv.set_partial("k", 14, b"xy")
            assert await kv.get("k") == b"hello WORLD!\0\0xy"
            await kv.set_partial("k", 0, b"")
            assert await kv.size("k") == 16

    @async_test
    async def test_set_partial_creates(self) -> None:
        async with self.kv_rw({}) as kv:
            await kv.set_partial("new/k", 3, b"xy")
            assert await kv.get("new/k") == b"\0\0\0xy"
            assert await kv.exists("new") is D

    @async_test
    async def test_set_partial_errors(self) -> None:
        async with self.kv_rw() as kv:
            with pytest.raises(KvValueExpected):
                await kv.set_partial("b", 0, b"no")
            with pytest.raises(KvDictionaryExpected):
                await kv.set_partial("a/x", 0, b"no")

    @async_test
    async def test_remove_value(self) -> None:
        async with self.kv_rw() as kv:
            await kv.remove("b/d/e")
            assert await kv.exists("b/d/e") is None
            assert await kv.list("b/d") == [("f", V)]
            await kv.remove("/a/")
            assert await kv.exists("a") is None
            with pytest.raises(KvNotFound):
                await kv.get("a")

    @async_test
    async def test_remove_dictionary(self) -> None:
        async with self.kv_rw() as kv:
            await kv.remove("b")
            for key in ("b", "b/c", "b/d", "b/d/e"):
                assert await kv.exists(key) is None, key
            assert await kv.list("") == [("a", V), ("dir with space", D), ("z", V)]

    @async_test
    async def test_remove_missing(self) -> None:
        async with self.kv_rw() as kv:
            for key in ("missing", "b/missing", "a/below-a-value"):
                with pytest.raises(KvNotFound):
                    await kv.remove(key)

    @async_test
    async def test_remove_root_empties(self) -> None:
        async with self.kv_rw() as kv:
            await kv.remove("")
            assert await kv.exists("") is D
            assert await kv.list("") == []
            await kv.set("a", b"again")
            assert await kv.get("a") == b"again"

    @async_test
    async def test_remove_last_entry(self) -> None:
        async with self.kv_rw({"p/q": b"1", "r": b"2"}) as kv:
            await kv.remove("p/q")
            kept = await kv.exists("p")
            assert kept in (D, None)
            assert await kv.list("") == ([("p", D)] if kept else []) + [("r", V)]

    @async_test
    async def test_rename_value(self) -> None:
        async with self.kv_rw() as kv:
            await kv.rename("a", "new/place/a2")
            assert await kv.get("new/place/a2") == b"alpha"
            assert await kv.exists("a") is None
            assert await kv.exists("new/place") is D

    @async_test
    async def test_rename_dictionary(self) -> None:
        async with self.kv_rw() as kv:
            await kv.rename("b", "moved/b2")
            assert await kv.exists("b") is None
            assert await kv.get("moved/b2/d/e") == b"0123456789"
            assert await kv.get("moved/b2/c") == b""
            assert await kv.list("moved/b2") == [("c", V), ("d", D)]

    @async_test
    async def test_rename_onto_value(self) -> None:
        async with self.kv_rw() as kv:
            await kv.rename("z", "a")
            assert await kv.get("a") == b"zeta"
            assert await kv.exists("z") is None

    @async_test
    async def test_rename_onto_dictionary(self) -> None:
        async with self.kv_rw() as kv:
            with pytest.raises(KvAlreadyPresent):
                await kv.rename("a", "b")
            with pytest.raises(KvAlreadyPresent):
                await kv.rename("b/d", "dir with space")
            with pytest.raises(KvAlreadyPresent):
                await kv.rename("b", "z")
            assert await kv.get("a") == b"alpha"
            assert await kv.get("z") == b"zeta"

    @async_test
    async def test_rename_errors(self) -> None:
        async with self.kv_rw() as kv:
            with pytest.raises(KvNotFound):
                await kv.rename("missing", "elsewhere")
            with pytest.raises(KvError):
                await kv.rename("b", "b/d/inside")
            with pytest.raises(KvDictionaryExpected):
                await kv.rename("z", "a/below")
            assert await kv.list("b") == [("c", V), ("d", D)]

    @async_test
    async def test_rename_to_itself(self) -> None:
        async with self.kv_rw() as kv:
            await kv.rename("a", "/a/")
            await kv.rename("b", "b")
            assert await kv.get("a") == b"alpha"
            assert await kv.get("b/d/e") == b"0123456789"

    @async_test
    async def test_digest_follows_content(self) -> None:
        async with self.kv_rw({"k": b"one"}) as kv:
            first = await kv.digest("k")
            await kv.set("k", b"two")
            assert await kv.digest("k") != first
            await kv.set("k", b"one")
            assert await kv.digest("k") == first

    @async_test
    async def test_last_modified_moves_forward(self) -> None:
        async with self.kv_rw({}) as kv:
            await kv.set("k", b"one")
            first = await kv.last_modified("k")
            await kv.set("k", b"two")
            assert await kv.last_modified("k") >= first

    def test_state_machine(self) -> None:
        """The store against :class:`~mirage.core.testing.KvModel`, by hypothesis."""
        machine = kv_rw_state_machine(lambda: self.make_kv_rw({}), timeout=self.timeout)
        run_state_machine_as_test(machine, settings=self.state_machine_settings)
