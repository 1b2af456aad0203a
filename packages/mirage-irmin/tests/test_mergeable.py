"""Mergeable contents (counters, last-writer-wins, sets, JSON objects): their laws,
checked with hypothesis on the merge functions and on whole-tree merges, and
conflicts reported per path with both sides."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mirage.irmin import Info, MemoryBackend, MergeConflict, Repo, Store, merge
from mirage.irmin._merge import MergeFn, Unmergeable

counters = st.integers(-(10**6), 10**6).map(lambda n: b"%d" % n)
lwws = st.builds(merge.lww_encode, st.integers(0, 20), st.binary(max_size=6))
line_sets = st.sets(
    st.binary(min_size=1, max_size=4).filter(lambda b: b"\n" not in b and b"\r" not in b)
).map(lambda s: b"".join(x + b"\n" for x in sorted(s)))
json_sets = st.sets(st.integers(0, 9) | st.sampled_from(["a", "b", "c"])).map(
    lambda s: json.dumps(sorted(s, key=json.dumps), separators=(",", ":")).encode()
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(0, 5) | st.sampled_from(["x", "y"]),
    lambda inner: st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
    max_leaves=6,
).map(lambda v: json.dumps(v, sort_keys=True, separators=(",", ":")).encode())

# (merge function, canonical values, commutative)
CASES: dict[str, tuple[MergeFn, st.SearchStrategy[bytes]]] = {
    "counter": (merge.counter, counters),
    "lww": (merge.lww, lwws),
    "line_set": (merge.line_set, line_sets),
    "json_set": (merge.json_set, json_sets),
    "json_object": (merge.json_object, json_values),
}


def _run(fn: MergeFn, b: bytes | None, o: bytes | None, t: bytes | None) -> bytes | str | None:
    try:
        return fn("p", b, o, t)
    except Unmergeable:
        return "conflict"


def test_json_false_is_not_zero_nor_one_one_point_zero() -> None:
    # Python's == conflates them; as JSON values they differ (hypothesis found it).
    assert merge.json_object("p", b"0", b"0", b"false") == b"false"
    assert merge.json_object("p", b"0", b"false", b"0") == b"false"
    assert merge.json_object("p", b"1", b"1.0", b"1") == b"1.0"
    assert merge.json_object("p", b'{"a":true}', b'{"a":1}', b'{"a":true}') == b'{"a":1}'
    with pytest.raises(Unmergeable):
        merge.json_object("p", b"2", b"false", b"0")


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_merge_function_laws(name: str, data: st.DataObject) -> None:
    fn, values = CASES[name]
    b, o, t = data.draw(values), data.draw(values), data.draw(values)
    # commutative, conflicts included
    assert _run(fn, b, o, t) == _run(fn, b, t, o)
    # merging with the ancestor gives the other side
    assert _run(fn, b, b, t) == t
    assert _run(fn, b, o, b) == o
    # merging with self: the value (counters add both increments, by design)
    if name != "counter":
        assert _run(fn, b, o, o) == o


@settings(max_examples=60, deadline=None)
@given(st.lists(lwws, min_size=1, max_size=5), st.randoms())
def test_lww_converges_whatever_the_order(values: list[bytes], rnd: object) -> None:
    expected = max(values, key=merge.lww_decode)
    order = list(values)
    rnd.shuffle(order)  # type: ignore[attr-defined]
    acc = order[0]
    for v in order[1:]:
        acc = merge.lww("p", None, acc, v)  # type: ignore[assignment]
    assert acc == expected


def test_lww_tiebreak_and_bad_values() -> None:
    a, b = merge.lww_encode(5, b"apple"), merge.lww_encode(5, b"pear")
    assert merge.lww("k", None, a, b) == merge.lww("k", None, b, a) == b
    newer = merge.lww_encode(6, b"a")
    assert merge.lww("k", a, newer, b) == newer
    assert merge.lww("k", a, None, b) == b  # a deletion carries no timestamp
    assert merge.lww_decode(merge.lww_encode(-3, b"x y")) == (-3, b"x y")
    for bad in (b"", b"5", b"x 1", b"1_0 v", b"--1 v", b"+1 v"):
        with pytest.raises(Unmergeable):
            merge.lww("k", None, bad, a)


def test_json_set_merges_additions_and_removals() -> None:
    base = b'["a","b"]'
    assert merge.json_set("s", base, b'["a","b","c"]', b'["b"]') == b'["b","c"]'
    assert merge.json_set("s", None, b'[1,{"x":1}]', b"[1]") == b'[1,{"x":1}]'
    with pytest.raises(Unmergeable):
        merge.json_set("s", None, b"{}", b"[]")
    with pytest.raises(Unmergeable):
        merge.json_set("s", None, b"nope", b"[]")


def _tree(repo: Repo, node: dict[str, bytes]) -> bytes:
    return repo.tree_of_node({"d": dict(node)}) if node else repo.empty_tree


def _merged(repo: Repo, b: bytes, o: bytes, t: bytes, fn: MergeFn) -> bytes | str:
    try:
        return repo.merge_trees(b, o, t, fn)
    except MergeConflict as e:
        return "conflicts: " + ",".join(c.path for c in e.conflicts)


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_tree_merge_laws(name: str, data: st.DataObject) -> None:
    fn, values = CASES[name]
    trees = st.dictionaries(st.sampled_from(["k1", "k2", "k3"]), values, max_size=3)
    repo = Repo(MemoryBackend())
    b, o, t = (_tree(repo, data.draw(trees)) for _ in range(3))
    assert _merged(repo, b, o, o, fn) == o  # with self
    assert _merged(repo, b, b, t, fn) == t  # with the ancestor
    assert _merged(repo, b, o, b, fn) == o
    assert _merged(repo, b, o, t, fn) == _merged(repo, b, t, o, fn)  # commutative


def test_mergeable_contents_in_a_store() -> None:
    s = Store(Repo(MemoryBackend()))
    info: Callable[[int], Info] = lambda t: Info(date=t)  # noqa: E731
    s.batch({"hits": b"10", "owner": merge.lww_encode(1, b"ann"), "tags": b'["x"]'}, info(1))
    other = s.clone("other")
    s.batch({"hits": b"12", "owner": merge.lww_encode(3, b"bob"), "tags": b'["x","y"]'}, info(2))
    other.batch({"hits": b"15", "owner": merge.lww_encode(2, b"cy"), "tags": b"[]"}, info(3))

    def by_path(path: str, b: bytes | None, o: bytes | None, t: bytes | None) -> bytes | None:
        fn = {"hits": merge.counter, "owner": merge.lww, "tags": merge.json_set}[path]
        return fn(path, b, o, t)

    s.merge_with_branch("other", info(4), by_path)
    assert s.get("hits") == b"17"
    assert merge.lww_decode(s.get("owner")) == (3, b"bob")
    assert s.get("tags") == b'["y"]'


def test_conflicts_name_each_path_with_both_sides() -> None:
    repo = Repo(MemoryBackend())
    s = Store(repo)
    s.batch({"a": b"1", "b/c": b"x", "d": b"[1]"}, Info(date=1))
    other = s.clone("other")
    s.batch({"a": b"2", "b/c": b"y", "d": b"{}"}, Info(date=2))
    other.batch({"a": b"3", "b/c": b"z", "d": b"[2]"}, Info(date=3))
    with pytest.raises(MergeConflict) as e:
        s.merge_with_branch("other", Info(date=4), merge.json_set)
    by_path = {c.path: c for c in e.value.conflicts}
    assert sorted(by_path) == ["a", "b/c", "d"]  # every path, none dropped
    for path, (base, ours, theirs) in {
        "a": (b"1", b"2", b"3"),
        "b/c": (b"x", b"y", b"z"),
        "d": (b"[1]", b"{}", b"[2]"),
    }.items():
        c = by_path[path]
        assert c.base and c.ours and c.theirs
        sides = (repo.read_blob(c.base[1]), repo.read_blob(c.ours[1]), repo.read_blob(c.theirs[1]))
        assert sides == (base, ours, theirs)
        assert "JSON" in c.reason or "not" in c.reason
