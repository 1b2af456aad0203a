"""Reading and writing the TLS presentation language.

:class:`Reader` pulls integers and length-prefixed vectors from bytes; every
shortfall raises :class:`~mirage.tls.DecodeError`, so a decoder built from it is total
as long as it catches nothing else. :class:`Writer` is a bytearray with the matching
``push`` methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from ._errors import DecodeError

__all__ = ["Reader", "Writer"]

T = TypeVar("T")


class Reader:
    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def remaining(self) -> int:
        return self.end - self.pos

    def eof(self) -> bool:
        return self.pos >= self.end

    def take(self, n: int) -> bytes:
        if n > self.end - self.pos:
            raise DecodeError(f"needed {n} bytes, {self.end - self.pos} left")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def u8(self) -> int:
        return self.uint(1)

    def u16(self) -> int:
        return self.uint(2)

    def u24(self) -> int:
        return self.uint(3)

    def opaque(self, size: int, minimum: int = 0) -> bytes:
        """A vector of bytes with a ``size``-byte length prefix."""
        data = self.take(self.uint(size))
        if len(data) < minimum:
            raise DecodeError(f"a vector shorter than {minimum} bytes")
        return data

    @contextmanager
    def block(self, size: int, minimum: int = 0) -> Iterator[Reader]:
        """A length-prefixed block, which the body must consume exactly."""
        length = self.uint(size)
        if length > self.end - self.pos:
            raise DecodeError("a block longer than its enclosing data")
        if length < minimum:
            raise DecodeError(f"a block shorter than {minimum} bytes")
        inner = Reader(self.data, self.pos, self.pos + length)
        yield inner
        if not inner.eof():
            raise DecodeError("trailing bytes inside a block")
        self.pos += length

    def vector(self, size: int, item: Callable[[Reader], T], minimum: int = 0) -> list[T]:
        out: list[T] = []
        with self.block(size, minimum) as inner:
            while not inner.eof():
                out.append(item(inner))
        return out

    def finish(self) -> None:
        if not self.eof():
            raise DecodeError("trailing bytes after a message")


class Writer:
    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def uint(self, size: int, value: int) -> None:
        self.buf += value.to_bytes(size, "big")

    def u8(self, value: int) -> None:
        self.buf.append(value)

    def u16(self, value: int) -> None:
        self.buf += value.to_bytes(2, "big")

    def u24(self, value: int) -> None:
        self.buf += value.to_bytes(3, "big")

    def raw(self, data: bytes) -> None:
        self.buf += data

    def opaque(self, size: int, data: bytes) -> None:
        self.buf += len(data).to_bytes(size, "big")
        self.buf += data

    @contextmanager
    def block(self, size: int) -> Iterator[Writer]:
        start = len(self.buf)
        self.buf += bytes(size)
        yield self
        length = len(self.buf) - start - size
        self.buf[start : start + size] = length.to_bytes(size, "big")

    def getvalue(self) -> bytes:
        return bytes(self.buf)
