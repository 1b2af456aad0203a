"""A read-write store against a model: a hypothesis ``RuleBasedStateMachine``.

Theory of operation: :class:`KvModel` is the specification of a ``kv_rw`` store as
plain data, a dictionary of values by full key and a set of dictionary keys (the
root ``""`` always among them). Each rule of :class:`KvRwStateMachine` applies one
operation to the store and to the model, and checks that the store raised exactly
the error the model predicts (or none); after every step the invariant walks the
whole store with ``list`` and ``get`` and compares it with the model.

Keys are drawn from a small alphabet so that operations collide: sets land on
dictionaries, renames on existing keys, removals on ancestors.

One freedom is left to stores: when a removal or a rename leaves a dictionary empty,
a store may keep it (a file-system directory) or drop it (a Git-like tree). The
machine asks the store which it did, bottom up, and holds it to that answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mirage.core.types import (
    KvAlreadyPresent,
    KvDictionaryExpected,
    KvError,
    KvKind,
    KvNotFound,
    KvRw,
    KvValueExpected,
)

from ._run import disconnect

__all__ = ["KvModel", "KvRwStateMachine", "kv_rw_state_machine"]

T = TypeVar("T")

KEYS = st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3).map("/".join)
DATA = st.binary(max_size=16)
OFFSETS = st.integers(min_value=0, max_value=24)


def parent(key: str) -> str:
    return key.rpartition("/")[0]


def ancestors(key: str) -> list[str]:
    """Proper ancestors of ``key``, nearest first, the root excluded."""
    out = []
    while "/" in key:
        key = parent(key)
        out.append(key)
    return out


def is_under(key: str, ancestor: str) -> bool:
    return ancestor == "" or key.startswith(ancestor + "/")


@dataclass
class KvModel:
    """What a ``kv_rw`` store holds, as plain data."""

    values: dict[str, bytes] = field(default_factory=dict)
    dicts: set[str] = field(default_factory=lambda: {""})

    def kind(self, key: str) -> KvKind | None:
        if key in self.values:
            return KvKind.VALUE
        if key in self.dicts:
            return KvKind.DICTIONARY
        return None

    def children(self, key: str) -> list[tuple[str, KvKind]]:
        out = [(k, KvKind.VALUE) for k in self.values if k and parent(k) == key]
        out += [(k, KvKind.DICTIONARY) for k in self.dicts if k and parent(k) == key]
        return sorted((k.rpartition("/")[2], kind) for k, kind in out)

    def write_error(self, key: str) -> type[KvError] | None:
        """The error of ``set``/``set_partial`` at ``key``, if any."""
        if self.kind(key) is KvKind.DICTIONARY:
            return KvValueExpected
        if any(a in self.values for a in ancestors(key)):
            return KvDictionaryExpected
        return None

    def add_parents(self, key: str) -> None:
        self.dicts.update(ancestors(key))

    def set(self, key: str, data: bytes) -> None:
        self.add_parents(key)
        self.values[key] = data

    def set_partial(self, key: str, offset: int, data: bytes) -> None:
        old = self.values.get(key, b"")
        head = old[:offset].ljust(offset, b"\0")
        self.set(key, head + data + old[offset + len(data) :])

    def remove(self, key: str) -> None:
        self.values = {k: v for k, v in self.values.items() if not (k == key or is_under(k, key))}
        self.dicts = {d for d in self.dicts if not (d == key or is_under(d, key))} | {""}

    def rename_error(self, source: str, dest: str) -> type[KvError] | None:
        kind = self.kind(source)
        if kind is None:
            return KvNotFound
        if source == dest:
            return None
        if is_under(dest, source):
            return KvError
        dest_kind = self.kind(dest)
        if dest_kind is KvKind.DICTIONARY or (
            dest_kind is KvKind.VALUE and kind is KvKind.DICTIONARY
        ):
            return KvAlreadyPresent
        if dest_kind is None and any(a in self.values for a in ancestors(dest)):
            return KvDictionaryExpected
        return None

    def rename(self, source: str, dest: str) -> None:
        if source == dest:
            return

        def moved(key: str) -> str:
            return dest + key[len(source) :]

        values = {moved(k): v for k, v in self.values.items() if k == source or is_under(k, source)}
        dicts = {moved(d) for d in self.dicts if d == source or is_under(d, source)}
        self.remove(source)
        self.add_parents(dest)
        self.values.update(values)
        self.dicts |= dicts


class KvRwStateMachine(RuleBasedStateMachine):
    """Rules for any ``kv_rw`` store; :func:`kv_rw_state_machine` binds a store."""

    timeout: float = 30.0

    async def make_store(self) -> KvRw:
        raise NotImplementedError("use kv_rw_state_machine(make) to bind a store")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.model = KvModel()
        self.store = self.run(self.make_store())

    def teardown(self) -> None:
        try:
            self.run(disconnect(self.store))
        finally:
            self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, self.timeout))

    def attempt(
        self, what: str, coro: Coroutine[Any, Any, Any], expected: type[KvError] | None
    ) -> bool:
        """Run ``coro`` and check that it raises ``expected`` (or nothing); whether it
        succeeded."""
        try:
            self.run(coro)
        except KvError as exc:
            if expected is None:
                raise AssertionError(f"{what} raised {exc!r}; the model expects success") from exc
            assert isinstance(exc, expected), f"{what} raised {exc!r}, expected {expected.__name__}"
            return False
        assert expected is None, f"{what} succeeded; the model expects {expected.__name__}"
        return True

    def settle(self, key: str) -> None:
        """After ``key`` went away: learn which emptied dictionaries the store kept."""
        for a in ancestors(key):
            if self.model.kind(a) is not KvKind.DICTIONARY or self.model.children(a):
                return
            kind = self.run(self.store.exists(a))
            if kind is KvKind.DICTIONARY:
                return
            assert kind is None, f"exists({a!r}) is {kind}: it was an empty dictionary"
            self.model.dicts.discard(a)

    @rule(key=KEYS, data=DATA)
    def set_value(self, key: str, data: bytes) -> None:
        expected = self.model.write_error(key)
        if self.attempt(f"set({key!r})", self.store.set(key, data), expected):
            self.model.set(key, data)

    @rule(key=KEYS, offset=OFFSETS, data=DATA)
    def set_partial(self, key: str, offset: int, data: bytes) -> None:
        expected = self.model.write_error(key)
        call = self.store.set_partial(key, offset, data)
        if self.attempt(f"set_partial({key!r}, {offset})", call, expected):
            self.model.set_partial(key, offset, data)

    @rule(key=KEYS)
    def remove(self, key: str) -> None:
        expected = None if self.model.kind(key) else KvNotFound
        if self.attempt(f"remove({key!r})", self.store.remove(key), expected):
            self.model.remove(key)
            self.settle(key)

    @rule(source=KEYS, dest=KEYS)
    def rename(self, source: str, dest: str) -> None:
        expected = self.model.rename_error(source, dest)
        call = self.store.rename(source, dest)
        if self.attempt(f"rename({source!r}, {dest!r})", call, expected):
            self.model.rename(source, dest)
            self.settle(source)

    def existing(self, data: st.DataObject) -> str:
        keys = sorted({*self.model.values, *self.model.dicts} - {""})
        return data.draw(st.sampled_from(keys), label="existing key")

    @precondition(lambda self: len(self.model.dicts) + len(self.model.values) > 1)
    @rule(data=st.data())
    def remove_existing(self, data: st.DataObject) -> None:
        self.remove(self.existing(data))

    @precondition(lambda self: len(self.model.dicts) + len(self.model.values) > 1)
    @rule(data=st.data(), dest=KEYS)
    def rename_existing(self, data: st.DataObject, dest: str) -> None:
        self.rename(self.existing(data), dest)

    @rule(key=KEYS)
    def look_up(self, key: str) -> None:
        kind = self.model.kind(key)
        assert self.run(self.store.exists(key)) is kind, f"exists({key!r}) should be {kind}"
        value = self.model.values.get(key)
        if value is not None:
            assert self.run(self.store.get(key)) == value
            assert self.run(self.store.size(key)) == len(value)
            return
        get_error = KvValueExpected if kind else KvNotFound
        self.attempt(f"get({key!r})", self.store.get(key), get_error)
        if kind is None:
            self.attempt(f"list({key!r})", self.store.list(key), KvNotFound)

    @invariant()
    def matches_model(self) -> None:
        todo = [""]
        while todo:
            key = todo.pop()
            entries = self.run(self.store.list(key))
            assert entries == self.model.children(key), f"list({key!r}) = {entries}"
            for name, kind in entries:
                full = f"{key}/{name}" if key else name
                if kind is KvKind.DICTIONARY:
                    todo.append(full)
                else:
                    assert self.run(self.store.get(full)) == self.model.values[full], full


def kv_rw_state_machine(
    make: Callable[[], Awaitable[KvRw]], *, timeout: float = 30.0
) -> type[KvRwStateMachine]:
    """A :class:`KvRwStateMachine` whose stores come from ``make()`` (a fresh, empty
    store each time). Run it with ``hypothesis.stateful.run_state_machine_as_test``, or
    expose ``kv_rw_state_machine(make).TestCase`` to pytest or unittest."""

    class BoundKvRwStateMachine(KvRwStateMachine):
        async def make_store(self) -> KvRw:
            return await make()

    BoundKvRwStateMachine.timeout = timeout
    return BoundKvRwStateMachine
