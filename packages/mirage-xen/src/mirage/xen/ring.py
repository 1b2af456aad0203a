"""Xen's shared I/O ring (``xen/include/public/io/ring.h``), front and back.

Theory of operation. A shared ring is a page (or more) holding a 64-byte header,
``req_prod``, ``req_event``, ``rsp_prod``, ``rsp_event`` (``u32``
free-running indices, then padding), followed by a power-of-two number of slots,
each as large as the larger of a request and a response. The front end produces
requests and consumes responses; the back end consumes requests and produces
responses into the slots the requests came from.

Producers write slots past their private index and then publish it
(``push_*_and_check_notify``), which says whether the consumer asked to be woken
for one of the new entries (its ``*_event`` index lies in the published range).
A consumer that runs out of work sets its event index to one past what it consumed
and checks again (``final_check_for_*``) so that no wake-up is lost.

Indices written by the peer are checked: a producer index that claims more entries
than the ring can hold raises :class:`RingError` (Xen's backends then close the
device).
"""

from __future__ import annotations

from .words import Words

__all__ = ["BackRing", "FrontRing", "RingError", "SharedRing", "HEADER_SIZE"]

HEADER_SIZE = 64
MASK = 0xFFFFFFFF

REQ_PROD, REQ_EVENT, RSP_PROD, RSP_EVENT = 0, 4, 8, 12


class RingError(Exception):
    """The peer wrote an index that no correct peer could have written."""


class SharedRing:
    """The shared part: header fields and slots over ``memory``."""

    def __init__(self, memory: memoryview, slot_size: int) -> None:
        if slot_size < 1:
            raise ValueError("slot size must be positive")
        self.memory = memory
        self.words = Words(memory)
        self.slot_size = slot_size
        slots = (len(memory) - HEADER_SIZE) // slot_size
        if slots < 1:
            raise ValueError("memory too small for one slot")
        self.size = 1 << (slots.bit_length() - 1)  # round down to a power of two

    def init(self) -> None:
        """``SHARED_RING_INIT``: indices 0, event thresholds 1."""
        for off, value in ((REQ_PROD, 0), (REQ_EVENT, 1), (RSP_PROD, 0), (RSP_EVENT, 1)):
            self.set(off, value)
        self.memory[16:HEADER_SIZE] = bytes(HEADER_SIZE - 16)

    def get(self, off: int) -> int:
        return self.words.get(off)

    def set(self, off: int, value: int) -> None:
        self.words.set(off, value)

    def slot(self, index: int) -> memoryview:
        start = HEADER_SIZE + (index & (self.size - 1)) * self.slot_size
        return self.memory[start : start + self.slot_size]

    def write_slot(self, index: int, data: bytes) -> None:
        if len(data) > self.slot_size:
            raise ValueError(f"{len(data)} bytes do not fit a {self.slot_size}-byte slot")
        self.slot(index)[: len(data)] = data


class FrontRing:
    """The front end: ``req_prod_pvt`` and ``rsp_cons`` are private."""

    def __init__(self, ring: SharedRing) -> None:
        self.ring = ring
        self.req_prod_pvt = 0
        self.rsp_cons = 0

    @property
    def free_requests(self) -> int:
        return self.ring.size - ((self.req_prod_pvt - self.rsp_cons) & MASK)

    def full(self) -> bool:
        return self.free_requests == 0

    def push_request(self, data: bytes) -> int:
        """Write a request into the next slot (not yet visible); returns its index."""
        if self.full():
            raise RingError("the ring is full")
        index = self.req_prod_pvt
        self.ring.write_slot(index, data)
        self.req_prod_pvt = (index + 1) & MASK
        return index

    def push_requests_and_check_notify(self) -> bool:
        old = self.ring.get(REQ_PROD)
        new = self.req_prod_pvt
        self.ring.set(REQ_PROD, new)
        event = self.ring.get(REQ_EVENT)
        return (new - event) & MASK < (new - old) & MASK

    def unconsumed_responses(self) -> int:
        waiting = (self.ring.get(RSP_PROD) - self.rsp_cons) & MASK
        if waiting > (self.req_prod_pvt - self.rsp_cons) & MASK:
            raise RingError("the back end produced responses to requests never made")
        return waiting

    def take_responses(self) -> list[bytes]:
        """Every published response, oldest first."""
        out = []
        for _ in range(self.unconsumed_responses()):
            out.append(bytes(self.ring.slot(self.rsp_cons)))
            self.rsp_cons = (self.rsp_cons + 1) & MASK
        return out

    def final_check_for_responses(self) -> bool:
        if self.unconsumed_responses():
            return True
        self.ring.set(RSP_EVENT, self.rsp_cons + 1)
        return bool(self.unconsumed_responses())


class BackRing:
    """The back end: ``rsp_prod_pvt`` and ``req_cons`` are private."""

    def __init__(self, ring: SharedRing) -> None:
        self.ring = ring
        self.rsp_prod_pvt = 0
        self.req_cons = 0

    def unconsumed_requests(self) -> int:
        waiting = (self.ring.get(REQ_PROD) - self.req_cons) & MASK
        room = self.ring.size - ((self.req_cons - self.rsp_prod_pvt) & MASK)
        if waiting > self.ring.size:
            raise RingError("the front end published more requests than the ring holds")
        return min(waiting, room)

    def take_requests(self) -> list[bytes]:
        out = []
        for _ in range(self.unconsumed_requests()):
            out.append(bytes(self.ring.slot(self.req_cons)))
            self.req_cons = (self.req_cons + 1) & MASK
        return out

    def push_response(self, data: bytes) -> int:
        if (self.req_cons - self.rsp_prod_pvt) & MASK == 0:
            raise RingError("no request is waiting for a response")
        index = self.rsp_prod_pvt
        self.ring.write_slot(index, data)
        self.rsp_prod_pvt = (index + 1) & MASK
        return index

    def push_responses_and_check_notify(self) -> bool:
        old = self.ring.get(RSP_PROD)
        new = self.rsp_prod_pvt
        self.ring.set(RSP_PROD, new)
        event = self.ring.get(RSP_EVENT)
        return (new - event) & MASK < (new - old) & MASK

    def final_check_for_requests(self) -> bool:
        if self.unconsumed_requests():
            return True
        self.ring.set(REQ_EVENT, self.req_cons + 1)
        return bool(self.unconsumed_requests())
