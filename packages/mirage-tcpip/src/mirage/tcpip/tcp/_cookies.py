"""SYN cookies: answer a SYN without keeping state, when the listen backlog is full.

The initial sequence number of the SYN-ACK carries everything needed to build the
connection when the handshake's last ACK arrives: a 5-bit counter of 64-second
periods, a 3-bit index into a table of MSS values, and a 24-bit keyed hash of the
4-tuple, the peer's ISN and the counter. A cookie is valid during two periods. Window
scaling, SACK and timestamps are not offered on a cookie SYN-ACK, so the connection
runs without them.
"""

from __future__ import annotations

import hashlib
import os

__all__ = ["MSS_TABLE", "SynCookies"]

MSS_TABLE = (216, 536, 1024, 1200, 1360, 1440, 1460, 8960)
PERIOD = 64.0


class SynCookies:
    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else os.urandom(16)

    def _hash(self, quad: bytes, peer_isn: int, counter: int) -> int:
        data = quad + (peer_isn & 0xFFFFFFFF).to_bytes(4, "big") + bytes((counter,))
        digest = hashlib.blake2s(data, key=self._secret, digest_size=3).digest()
        return int.from_bytes(digest, "big")

    def make(self, quad: bytes, peer_isn: int, mss: int, now: float) -> tuple[int, int]:
        """(our ISN, the MSS it encodes: the largest table value <= ``mss``)."""
        index = max((i for i, m in enumerate(MSS_TABLE) if m <= mss), default=0)
        counter = int(now // PERIOD) & 0x1F
        cookie = (counter << 27) | (index << 24) | self._hash(quad, peer_isn, counter)
        return cookie, MSS_TABLE[index]

    def check(self, quad: bytes, peer_isn: int, cookie: int, now: float) -> int | None:
        """The MSS of a valid cookie (ACK number minus one), else None."""
        counter = (cookie >> 27) & 0x1F
        age = (int(now // PERIOD) - counter) & 0x1F
        if age > 1:
            return None
        if (cookie & 0xFFFFFF) != self._hash(quad, peer_isn, counter):
            return None
        return MSS_TABLE[(cookie >> 24) & 0x7]
