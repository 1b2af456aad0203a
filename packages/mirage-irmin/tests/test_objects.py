"""Codecs of Git objects, loose objects and refs: round trips, totality, and the
ids ``git`` computes."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from conftest import git, needs_git
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mirage.irmin import Blob, Commit, DecodeError, ObjectType, Person, Tag, Tree, TreeEntry
from mirage.irmin._objects import (
    MODE_EXEC,
    MODE_FILE,
    MODE_LINK,
    MODE_TREE,
    decode_loose,
    decode_object,
    encode_loose,
    encode_object,
    hash_object,
)
from mirage.irmin._refs import (
    PackedRef,
    check_ref_name,
    decode_loose_ref,
    decode_packed_refs,
    encode_packed_refs,
)

OIDS = st.binary(min_size=20, max_size=20)
NAMES = st.text(min_size=1, max_size=12).filter(lambda s: "/" not in s and "\0" not in s)
TEXT = st.text(max_size=20).filter(lambda s: not any(c in s for c in "<>\n"))
PEOPLE = st.builds(
    Person,
    TEXT,
    TEXT,
    st.integers(min_value=0, max_value=2**40),
    st.from_regex(r"[+-][0-9]{4}", fullmatch=True),
)
TREES = st.lists(
    st.builds(
        TreeEntry, st.sampled_from([MODE_FILE, MODE_EXEC, MODE_LINK, MODE_TREE]), NAMES, OIDS
    ),
    max_size=6,
    unique_by=lambda e: e.name,
).map(Tree.of)
COMMITS = st.builds(
    Commit,
    OIDS,
    st.lists(OIDS, max_size=3).map(tuple),
    PEOPLE,
    PEOPLE,
    st.text(max_size=40),
    st.lists(
        st.tuples(
            st.sampled_from(["encoding", "gpgsig", "x-extra"]), st.text(min_size=1, max_size=20)
        ),
        max_size=2,
    ).map(tuple),
)
TAGS = st.builds(
    Tag,
    OIDS,
    st.sampled_from(list(ObjectType)),
    NAMES.filter(lambda s: "\n" not in s),
    st.none() | PEOPLE,
    st.text(max_size=30),
)
OBJECTS = st.one_of(st.builds(Blob, st.binary(max_size=64)), TREES, COMMITS, TAGS)


@given(OBJECTS)
@settings(max_examples=150)
def test_round_trip(obj: Blob | Tree | Commit | Tag) -> None:
    kind, body = encode_object(obj)
    assert decode_object(kind, body) == obj
    assert decode_loose(encode_loose(kind, body)) == (kind, body)


@given(st.sampled_from(list(ObjectType)), st.binary(max_size=200))
@settings(max_examples=300)
@example(ObjectType.COMMIT, b"tree " + b"0" * 40 + b"\nauthor a <b> 01 +0000\n")
@example(ObjectType.TREE, b"100644 a\0short")
@example(ObjectType.TAG, b"object x\n\n")
def test_decode_object_is_total(kind: ObjectType, body: bytes) -> None:
    try:
        decode_object(kind, body)
    except DecodeError:
        pass


@given(st.binary(max_size=120))
@settings(max_examples=200)
@example(zlib.compress(b"blob 3\0ab"))
@example(zlib.compress(b"blob 03\0abc"))
@example(zlib.compress(b"blob 3\0abc")[:-2])
@example(zlib.compress(b"nope 0\0"))
def test_decode_loose_is_total(data: bytes) -> None:
    try:
        decode_loose(data)
    except DecodeError:
        pass


@given(st.binary(max_size=120))
@settings(max_examples=200)
def test_ref_decoders_are_total(data: bytes) -> None:
    for decode in (decode_loose_ref, decode_packed_refs):
        try:
            decode(data)
        except DecodeError:
            pass


@given(
    st.lists(
        st.tuples(
            st.from_regex(r"refs/(heads|tags)/[a-z]{1,8}", fullmatch=True), OIDS, st.none() | OIDS
        ),
        max_size=5,
        unique_by=lambda t: t[0],
    )
)
def test_packed_refs_round_trip(refs: list[tuple[str, bytes, bytes | None]]) -> None:
    packed = [PackedRef(n, o, p) for n, o, p in refs]
    assert sorted(decode_packed_refs(encode_packed_refs(packed)), key=lambda r: r.name) == sorted(
        packed, key=lambda r: r.name
    )


def test_encoders_refuse_what_git_cannot_read() -> None:
    oid = b"\1" * 20
    person = Person("n", "e", 0)
    for bad in (
        Tag(oid, ObjectType.COMMIT, "two\nlines", None, ""),
        Commit(oid, (), Person("a<b", "e", 0), person, ""),
        Commit(oid, (), Person("n", "e", 0, "0000"), person, ""),
        Tree((TreeEntry(MODE_FILE, "a/b", oid),)),
    ):
        with pytest.raises(ValueError):
            encode_object(bad)


def test_ref_names() -> None:
    for good in ("HEAD", "refs/heads/main", "refs/tags/v1.0", "refs/heads/a/b"):
        assert check_ref_name(good) == good
    for bad in (
        "main",
        "refs/heads/a..b",
        "refs/heads/.x",
        "refs/heads/x.lock",
        "refs/heads/a b",
        "refs/heads/x/",
        "refs/heads/@{1}",
    ):
        with pytest.raises(Exception, match="invalid ref name"):
            check_ref_name(bad)
    assert decode_loose_ref(b"ref: refs/heads/main\n") == "refs/heads/main"
    assert decode_loose_ref(b"ab" * 20 + b"\n") == bytes.fromhex("ab" * 20)


def test_tree_order_puts_trees_after_prefixed_names() -> None:
    oid = b"\x01" * 20
    tree = Tree.of(
        [
            TreeEntry(MODE_TREE, "a", oid),
            TreeEntry(MODE_FILE, "a.b", oid),
            TreeEntry(MODE_FILE, "a-", oid),
        ]
    )
    assert [e.name for e in tree.entries] == ["a-", "a.b", "a"]


@needs_git
def test_ids_match_git(tmp_path: Path) -> None:
    git("init", "-q", "--bare", str(tmp_path / "r.git"), cwd=tmp_path)
    repo = tmp_path / "r.git"
    blob = b"hello\n"
    assert (
        hash_object(ObjectType.BLOB, blob).hex()
        == git("hash-object", "--stdin", cwd=repo, input=blob).decode().strip()
    )
    git("hash-object", "-w", "--stdin", cwd=repo, input=blob)
    oid = hash_object(ObjectType.BLOB, blob)
    tree = Tree.of(
        [
            TreeEntry(MODE_FILE, "z", oid),
            TreeEntry(MODE_EXEC, "a", oid),
            TreeEntry(MODE_TREE, "d", hash_object(ObjectType.TREE, b"")),
        ]
    )
    git("hash-object", "-w", "-t", "tree", "--stdin", cwd=repo, input=b"")
    mktree = b"".join(
        b"%o %s %s\t%s\n"
        % (e.mode, b"tree" if e.is_tree else b"blob", e.oid.hex().encode(), e.name.encode())
        for e in tree.entries
    )
    _, body = encode_object(tree)
    assert (
        git("mktree", cwd=repo, input=mktree).decode().strip()
        == hash_object(ObjectType.TREE, body).hex()
    )
    person = Person("A U Thor", "a@example.com", 1700000000, "-0530")
    commit = Commit(hash_object(ObjectType.TREE, body), (), person, person, "subject\n\nbody\n")
    _, cbody = encode_object(commit)
    assert (
        git("hash-object", "-t", "commit", "--stdin", cwd=repo, input=cbody).decode().strip()
        == hash_object(ObjectType.COMMIT, cbody).hex()
    )


@given(st.binary(max_size=300) | st.sampled_from([b"", b"x" * 65535, b"y" * 65536, b"z" * 140000]))
def test_stored_zlib_streams_are_valid(data: bytes) -> None:
    """Level 0: a zlib stream of stored blocks, made by hand, that zlib reads back."""
    from mirage.irmin._objects import deflate

    d = zlib.decompressobj()
    assert d.decompress(deflate(data, 0)) == data and d.eof and not d.unused_data
    assert decode_loose(encode_loose(ObjectType.BLOB, data, 0)) == (ObjectType.BLOB, data)
