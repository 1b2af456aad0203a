"""The xenstore wire codec: round trips, totality, Xen's constants."""

from __future__ import annotations

import struct

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mirage.xen.xenstore import (
    ERROR_NAMES,
    PAYLOAD_MAX,
    Op,
    Packet,
    Perm,
    XsDecodeError,
    XsError,
    join_args,
    pull_packet,
    push_packet,
    split_args,
    valid_path,
)

PACKETS = st.builds(
    Packet,
    st.sampled_from(list(Op)) | st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.binary(max_size=PAYLOAD_MAX),
)


def test_op_numbers_match_xs_wire_h() -> None:
    assert [(op.name, op.value) for op in Op][:12] == [
        ("CONTROL", 0),
        ("DIRECTORY", 1),
        ("READ", 2),
        ("GET_PERMS", 3),
        ("WATCH", 4),
        ("UNWATCH", 5),
        ("TRANSACTION_START", 6),
        ("TRANSACTION_END", 7),
        ("INTRODUCE", 8),
        ("RELEASE", 9),
        ("GET_DOMAIN_PATH", 10),
        ("WRITE", 11),
    ]
    assert (Op.WATCH_EVENT, Op.ERROR, Op.RESET_WATCHES, Op.DIRECTORY_PART) == (15, 16, 21, 22)
    assert Op.INVALID == 0xFFFF


def test_error_names_are_xens() -> None:
    assert set(ERROR_NAMES) == {
        "EINVAL", "EACCES", "EEXIST", "EISDIR", "ENOENT", "ENOMEM", "ENOSPC", "EIO",
        "ENOTEMPTY", "ENOSYS", "EROFS", "EBUSY", "EAGAIN", "EISCONN", "E2BIG", "EPERM",
    }  # fmt: skip
    assert XsError("ENOENT").errno == 2
    assert XsError("EAGAIN").errno == 11


def test_header_layout() -> None:
    data = push_packet(Packet(Op.READ, 7, 3, b"/a\0"))
    assert data == struct.pack("<IIII", 2, 7, 3, 3) + b"/a\0"


@settings(max_examples=200)
@given(PACKETS)
def test_round_trip(packet: Packet) -> None:
    data = push_packet(packet)
    got, used = pull_packet(data + b"trailing")
    assert used == len(data)
    assert got == packet


@settings(max_examples=300)
@given(st.binary(max_size=64))
@example(struct.pack("<IIII", 2, 0, 0, PAYLOAD_MAX + 1))
def test_pull_is_total(data: bytes) -> None:
    try:
        packet, used = pull_packet(data)
    except XsDecodeError:
        return
    assert (packet is None) == (used == 0)
    assert used <= len(data)


def test_oversized_header_is_a_decode_error() -> None:
    with pytest.raises(XsDecodeError):
        pull_packet(struct.pack("<IIII", 2, 0, 0, PAYLOAD_MAX + 1))
    with pytest.raises(XsError):
        push_packet(Packet(Op.WRITE, 0, 0, bytes(PAYLOAD_MAX + 1)))


def test_partial_packets_need_more() -> None:
    data = push_packet(Packet(Op.READ, 1, 0, b"/x\0"))
    for cut in range(len(data)):
        assert pull_packet(data[:cut]) == (None, 0)


@given(st.lists(st.binary(max_size=20).filter(lambda b: b"\0" not in b), min_size=1))
def test_args_round_trip(args: list[bytes]) -> None:
    assert split_args(join_args(*args)) == args


def test_split_args() -> None:
    assert split_args(b"/p\0value\0with nul", 2) == [b"/p", b"value\0with nul"]
    with pytest.raises(XsError):
        split_args(b"unterminated")
    with pytest.raises(XsError):
        split_args(b"no separator", 2)


@given(st.binary(max_size=10) | st.text(max_size=10))
def test_perm_decode_is_total(raw: bytes | str) -> None:
    try:
        perm = Perm.decode(raw)
    except XsError as err:
        assert err.name == "EINVAL"
    else:
        assert Perm.decode(perm.encode()) == perm


def test_perms() -> None:
    assert Perm.decode("r5") == Perm("r", 5)
    assert Perm("b", 0).can_read and Perm("b", 0).can_write
    assert not Perm("n", 3).can_read
    for bad in ("x1", "r", "r-1", "r70000", "rr"):
        with pytest.raises(XsError):
            Perm.decode(bad)


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ("/", True),
        ("/local/domain/0/name", True),
        ("device/vif/0", True),
        ("@introduceDomain", True),
        ("/a_b-c@d", True),
        ("", False),
        ("/a/", False),
        ("/a//b", False),
        ("/a b", False),
        ("/a.b", False),
        ("/" + "x" * 3072, False),
        ("x" * 2049, False),
    ],
)
def test_valid_path(path: str, ok: bool) -> None:
    assert valid_path(path) is ok
