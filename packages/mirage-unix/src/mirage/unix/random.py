"""Random bytes from the host kernel."""

from __future__ import annotations

import os

__all__ = ["UnixRandom"]


class UnixRandom:
    @classmethod
    async def connect(cls) -> UnixRandom:
        return cls()

    async def disconnect(self) -> None:
        pass

    def generate(self, n: int) -> bytes:
        if n < 0:
            raise ValueError("cannot generate a negative number of bytes")
        return os.urandom(n)
