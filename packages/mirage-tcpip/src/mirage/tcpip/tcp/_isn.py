"""Initial sequence numbers after RFC 6528: ISN = M + F(4-tuple, secret).

M is a clock ticking every 4 microseconds; F is a keyed BLAKE2s hash of the
connection's addresses and ports, so sequence numbers of different connections are
unrelated and those of one 4-tuple still increase over time.
"""

from __future__ import annotations

import hashlib
import os

__all__ = ["IsnGenerator"]


class IsnGenerator:
    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else os.urandom(16)

    def __call__(
        self, local_ip: bytes, local_port: int, remote_ip: bytes, remote_port: int, now: float
    ) -> int:
        tuple_ = (
            local_ip + local_port.to_bytes(2, "big") + remote_ip + remote_port.to_bytes(2, "big")
        )
        digest = hashlib.blake2s(tuple_, key=self._secret, digest_size=4).digest()
        return (int(now * 250_000) + int.from_bytes(digest, "big")) & 0xFFFFFFFF
