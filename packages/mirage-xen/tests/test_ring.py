"""Xen's shared ring (ring.h), front and back, against a model."""

from __future__ import annotations

import struct

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mirage.xen.blkif import REQUEST_SIZE, RESPONSE_SIZE
from mirage.xen.ring import HEADER_SIZE, BackRing, FrontRing, RingError, SharedRing


def new_ring(slot: int = 8, pages: int = 1) -> tuple[FrontRing, BackRing, SharedRing]:
    shared = SharedRing(memoryview(bytearray(4096 * pages)), slot)
    shared.init()
    return FrontRing(shared), BackRing(shared), shared


def test_layout() -> None:
    _, _, shared = new_ring()
    assert HEADER_SIZE == 64
    assert struct.unpack_from("<IIII", shared.memory) == (0, 1, 0, 1)
    # The sizes Xen's __RING_SIZE gives: blkif gets 32 slots of 112 bytes in a page.
    assert REQUEST_SIZE == 112 and RESPONSE_SIZE == 16
    assert SharedRing(memoryview(bytearray(4096)), 112).size == 32
    assert SharedRing(memoryview(bytearray(4096)), 8).size == 256
    assert SharedRing(memoryview(bytearray(4096)), 4032).size == 1


def test_request_response_and_notify() -> None:
    front, back, shared = new_ring()
    front.push_request(b"req-one!")
    assert front.push_requests_and_check_notify()  # req_event was 1
    assert back.take_requests() == [b"req-one!"]
    assert not back.final_check_for_requests()  # sleeps: req_event = 2
    assert shared.get(4) == 2
    back.push_response(b"rsp-one!")
    assert back.push_responses_and_check_notify()  # rsp_event was 1
    assert front.take_responses() == [b"rsp-one!"]
    with pytest.raises(RingError):
        back.push_response(b"unasked")


def test_notify_only_when_asked() -> None:
    front, back, _ = new_ring()
    front.push_request(b"a")
    assert front.push_requests_and_check_notify()
    front.push_request(b"b")
    assert not front.push_requests_and_check_notify()  # the back end is awake
    assert len(back.take_requests()) == 2
    assert not back.final_check_for_requests()
    front.push_request(b"c")
    assert front.push_requests_and_check_notify()


def test_full_ring() -> None:
    front, _, shared = new_ring(slot=1024)
    assert shared.size == 2
    front.push_request(b"1")
    front.push_request(b"2")
    assert front.full()
    with pytest.raises(RingError):
        front.push_request(b"3")


def test_peer_indices_are_checked() -> None:
    _, back, shared = new_ring()
    shared.set(0, shared.size + 1)  # a front end claiming more than the ring holds
    with pytest.raises(RingError):
        back.take_requests()
    front2, _, shared2 = new_ring()
    shared2.set(8, 3)  # responses to requests never made
    with pytest.raises(RingError):
        front2.take_responses()


def test_indices_wrap() -> None:
    front, back, shared = new_ring()
    for ring_end in (front, back):
        for attr in ("req_prod_pvt", "rsp_cons", "rsp_prod_pvt", "req_cons"):
            if hasattr(ring_end, attr):
                setattr(ring_end, attr, 0xFFFFFFFE)
    for off in (0, 8):
        shared.set(off, 0xFFFFFFFE)
    for off in (4, 12):
        shared.set(off, 0xFFFFFFFF)
    for i in range(5):
        front.push_request(bytes([i]) * 8)
    front.push_requests_and_check_notify()
    assert [r[0] for r in back.take_requests()] == [0, 1, 2, 3, 4]
    assert back.req_cons == 3


class RingMachine(RuleBasedStateMachine):
    """Front and back over one ring, against a FIFO model; no wake-up may be lost."""

    def __init__(self) -> None:
        super().__init__()
        self.front, self.back, self.shared = new_ring(slot=256)  # 15 slots -> 8
        self.sent = 0
        self.pending_requests: list[int] = []  # published, not yet taken
        self.unpublished: list[int] = []
        self.taken: list[int] = []  # taken by the back, not yet answered
        self.answered: list[int] = []  # responses pushed, not yet published
        self.responses: list[int] = []  # published responses
        self.received: list[int] = []
        self.back_asleep = False
        self.front_asleep = False

    @precondition(lambda self: not self.front.full())
    @rule()
    def push_request(self) -> None:
        self.front.push_request(self.sent.to_bytes(4, "little"))
        self.unpublished.append(self.sent)
        self.sent += 1

    @rule()
    def publish_requests(self) -> None:
        notify = self.front.push_requests_and_check_notify()
        if self.unpublished and self.back_asleep:
            assert notify, "the sleeping back end must be woken"
        if notify:
            self.back_asleep = False
        self.pending_requests += self.unpublished
        self.unpublished = []

    @rule()
    def back_takes(self) -> None:
        got = [int.from_bytes(r[:4], "little") for r in self.back.take_requests()]
        assert got == self.pending_requests
        self.taken += got
        self.pending_requests = []

    @precondition(lambda self: bool(self.taken))
    @rule(n=st.integers(1, 4))
    def back_answers(self, n: int) -> None:
        for _ in range(min(n, len(self.taken))):
            value = self.taken.pop(0)
            self.back.push_response((value * 3).to_bytes(4, "little"))
            self.answered.append(value)

    @rule()
    def publish_responses(self) -> None:
        notify = self.back.push_responses_and_check_notify()
        if self.answered and self.front_asleep:
            assert notify, "the sleeping front end must be woken"
        if notify:
            self.front_asleep = False
        self.responses += self.answered
        self.answered = []

    @rule()
    def front_takes(self) -> None:
        got = [int.from_bytes(r[:4], "little") for r in self.front.take_responses()]
        assert got == [v * 3 for v in self.responses]
        self.received += self.responses
        self.responses = []

    @precondition(lambda self: not self.pending_requests)
    @rule()
    def back_sleeps(self) -> None:
        if not self.back.final_check_for_requests():
            self.back_asleep = True

    @precondition(lambda self: not self.responses)
    @rule()
    def front_sleeps(self) -> None:
        if not self.front.final_check_for_responses():
            self.front_asleep = True

    @invariant()
    def in_order(self) -> None:
        assert self.received == list(range(len(self.received)))
        assert self.front.free_requests == self.shared.size - (self.sent - len(self.received))


RingMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
test_ring_machine = RingMachine.TestCase
