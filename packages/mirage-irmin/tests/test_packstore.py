"""The pack backend: directories as hash tries (inodes) that stay canonical, a
million-entry directory, O(log n) records per change, total decoders, torn tails and
corrupt records."""

from __future__ import annotations

import hashlib
import math
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mirage.irmin import CorruptObject, DecodeError, Info, PackRepo, PackStore, PathError
from mirage.irmin._inode import FANOUT, Entry, TreeInode, Values, decode_record


def _depth(repo: PackRepo, key: bytes | None) -> int:
    if key is None:
        return 0
    node = repo.read(key)
    if isinstance(node, Values):
        return 1
    assert isinstance(node, TreeInode)
    return 1 + max(_depth(repo, k) for k in node.slots if k is not None)


names = st.integers(0, 300).map(lambda i: f"n{i}")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(names, st.one_of(st.none(), st.binary(max_size=3))), max_size=150))
def test_directories_match_a_model_and_stay_canonical(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, bytes | None]]
) -> None:
    repo = PackRepo(tmp_path_factory.mktemp("p"))
    store = PackStore(repo)
    model: dict[str, bytes] = {}
    for i, (name, value) in enumerate(ops):
        if value is None:
            model.pop(name, None)
            store.remove(f"d/{name}", Info(i))
        else:
            model[name] = value
            store.set(f"d/{name}", value, Info(i))
        assert store.length("d") == len(model)
    assert dict(store.walk("d")) == {f"d/{k}": v for k, v in model.items()}
    assert store.list("d") == [(k, "contents") for k in sorted(model)]
    # the same set of entries built at once has the same key: the shape is canonical
    bulk = PackStore(repo, "bulk")
    bulk.set_directory("d", model, Info(0))
    assert bulk.root() == store.root()
    repo.close()


def test_paths_branches_and_history(tmp_path: Path) -> None:
    repo = PackRepo(tmp_path)
    s = PackStore(repo)
    assert s.head() is None and s.find("a") is None and s.list() == []
    c1 = s.set("a/b/c", b"1", Info(1, "one"))
    c2 = s.batch({"a/b/d": b"2", "x": b"3", "a/b/c": None}, Info(2))
    assert s.list() == [("a", "node"), ("x", "contents")]
    assert s.list("a/b") == [("d", "contents")]
    with pytest.raises(PathError):
        s.set("x/y", b"under contents", Info(3))
    with pytest.raises(PathError):
        s.get("a/b/c")
    s.remove("a", Info(4))
    assert s.list() == [("x", "contents")]
    assert s.history()[1:] == [c2, c1]
    assert repo.commit_record(c1).message == "one"
    assert repo.branches() == {"main": s.head()}
    repo.close()
    again = PackStore(PackRepo(tmp_path))  # reopened: everything is in the file
    assert again.get("x") == b"3" and again.history()[-1] == c1


def test_a_million_entry_directory(tmp_path: Path) -> None:
    n = 1_000_000
    values = {f"entry-{i}": b"%d" % i for i in range(n)}
    repo = PackRepo(tmp_path)
    PackStore(repo).set_directory("big", values, Info(1))
    repo.close()

    repo = PackRepo(tmp_path)  # cold: only what the file holds
    store = PackStore(repo)
    root = store.repo.find_path(store.root(), ("big",))
    assert root is not None and store.length("big") == n
    entries = repo.entries(root.key)
    assert len(entries) == n
    expected = {k.encode(): hashlib.sha1(b"c" + v).digest() for k, v in values.items()}
    assert all(expected[e.name] == e.key and not e.node for e in entries)
    rng = random.Random(5)
    for i in rng.sample(range(n), 500):
        assert store.get(f"big/entry-{i}") == b"%d" % i
    depth = _depth(repo, root.key)
    assert depth <= math.ceil(math.log(n, FANOUT)) + 2

    before = repo.appended
    store.set("big/entry-7", b"changed", Info(2))
    written = repo.appended - before
    # the contents, one record per level of the trie, the root directory, the commit
    assert written <= depth + 3, written
    assert store.get("big/entry-7") == b"changed" and store.length("big") == n
    before = repo.appended
    store.remove("big/entry-8", Info(3))
    assert repo.appended - before <= depth + 2
    assert store.length("big") == n - 1 and store.find("big/entry-8") is None
    repo.close()


def test_torn_tail_is_cut_and_corruption_named(tmp_path: Path) -> None:
    repo = PackRepo(tmp_path)
    s = PackStore(repo)
    s.set("a", b"kept", Info(1))
    repo.close()
    pack = tmp_path / "store.pack"
    good = pack.read_bytes()
    pack.write_bytes(good + b"c" + b"\x01" * 20 + b"\x7f" + b"torn")  # a killed append
    repo = PackRepo(tmp_path)
    assert pack.stat().st_size == len(good) and PackStore(repo).get("a") == b"kept"
    repo.close()
    at = good.index(b"kept")
    pack.write_bytes(good[:at] + b"KEPT" + good[at + 4 :])
    with pytest.raises(CorruptObject) as e:
        PackStore(PackRepo(tmp_path)).get("a")
    assert hashlib.sha1(b"ckept").hexdigest() in str(e.value)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "store.pack").write_bytes(b"not a pack")
    with pytest.raises(DecodeError):
        PackRepo(tmp_path / "other")


@given(st.sampled_from([b"c", b"v", b"t", b"C", b"x"]), st.binary(max_size=200))
def test_record_decoders_are_total(kind: bytes, body: bytes) -> None:
    try:
        decode_record(kind, body)
    except DecodeError:
        pass


def test_values_entries_must_be_sorted() -> None:
    from mirage.irmin._inode import encode_record

    kind, body = encode_record(
        Values((Entry(b"b", False, b"\0" * 20), Entry(b"a", False, b"\0" * 20)))
    )
    with pytest.raises(DecodeError):
        decode_record(kind, body)
