"""Domain names: wire codec with compression, presentation format with escapes.

A :class:`Name` is a tuple of labels (bytes), the root label left out, kept with the
case it was read with; comparisons that DNS makes case-insensitively use
:attr:`Name.key`. Decoding follows compression pointers only backwards (each pointer
must point before the one being followed), which makes loops and pointer bombs
impossible, and enforces the 255-octet limit of RFC 1035.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._errors import DnsDecodeError

__all__ = ["Name", "NameError_", "ROOT", "pull_name", "push_name", "Compressor"]

MAX_NAME = 255
MAX_LABEL = 63


class NameError_(ValueError):
    """A name in presentation format that is not a valid name (local error)."""


_SPECIAL = frozenset(b'.\\"();@$ ')


def _label_text(label: bytes) -> str:
    out = []
    for byte in label:
        if byte in _SPECIAL:
            out.append("\\" + chr(byte))
        elif 0x21 <= byte <= 0x7E:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Name:
    """A domain name as its labels (without the root label); compared case-insensitively."""

    labels: tuple[bytes, ...]
    key: tuple[bytes, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", tuple(map(bytes.lower, self.labels)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Name):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    @classmethod
    def from_text(cls, text: str, origin: Name | None = None) -> Name:
        """Parse presentation format; a relative name is completed with ``origin``."""
        if text == "@":
            if origin is None:
                raise NameError_("'@' without an origin")
            return origin
        if text == ".":
            return ROOT
        if "\\" not in text and text.isascii():
            return cls._from_plain(text, origin)
        labels: list[bytes] = []
        current = bytearray()
        absolute = False
        i = 0
        n = len(text)
        while i < n:
            c = text[i]
            if c == "\\":
                if i + 1 >= n:
                    raise NameError_(f"name {text!r} ends with a backslash")
                if text[i + 1 : i + 4].isdigit() and len(text[i + 1 : i + 4]) == 3:
                    value = int(text[i + 1 : i + 4])
                    if value > 255:
                        raise NameError_(f"bad escape in {text!r}")
                    current.append(value)
                    i += 4
                    continue
                current.extend(text[i + 1].encode("utf-8"))
                i += 2
                continue
            if c == ".":
                if not current:
                    raise NameError_(f"empty label in {text!r}")
                labels.append(bytes(current))
                current = bytearray()
                if i == n - 1:
                    absolute = True
                i += 1
                continue
            current.extend(c.encode("utf-8"))
            i += 1
        if current:
            labels.append(bytes(current))
        if not absolute:
            if origin is None:
                raise NameError_(f"relative name {text!r} without an origin")
            labels.extend(origin.labels)
        name = cls(tuple(labels))
        name.check()
        return name

    @classmethod
    def _from_plain(cls, text: str, origin: Name | None, origin_size: int = 0) -> Name:
        """A name without escapes; ``origin_size``, when given, is the wire length of
        ``origin`` (a parser saves computing it for every name)."""
        absolute = text.endswith(".")
        body = text[:-1] if absolute else text
        raw = body.encode("ascii")
        labels = tuple(raw.split(b"."))
        if b"" in labels:
            raise NameError_(f"empty label in {text!r}")
        key = tuple(raw.lower().split(b".")) if body.lower() != body else labels
        size = len(raw) + 2  # the wire length of the labels written out
        if not absolute:
            if origin is None:
                raise NameError_(f"relative name {text!r} without an origin")
            labels += origin.labels
            key += origin.key
            size += (origin_size or origin.wire_length()) - 1
        if len(raw) > MAX_LABEL and max(map(len, labels)) > MAX_LABEL:
            raise NameError_(f"label longer than {MAX_LABEL} octets")
        if size > MAX_NAME:
            raise NameError_(f"name longer than {MAX_NAME} octets")
        name = object.__new__(cls)
        object.__setattr__(name, "labels", labels)
        object.__setattr__(name, "key", key)
        return name

    def check(self) -> None:
        for label in self.labels:
            if not label:
                raise NameError_("empty label")
            if len(label) > MAX_LABEL:
                raise NameError_(f"label longer than {MAX_LABEL} octets")
        if self.wire_length() > MAX_NAME:
            raise NameError_(f"name longer than {MAX_NAME} octets")

    def wire_length(self) -> int:
        return sum(len(label) + 1 for label in self.labels) + 1

    def to_text(self) -> str:
        if not self.labels:
            return "."
        return ".".join(_label_text(label) for label in self.labels) + "."

    def relativize(self, origin: Name) -> str:
        if self == origin:
            return "@"
        if self.is_subdomain(origin) and origin.labels:
            head = self.labels[: len(self.labels) - len(origin.labels)]
            return ".".join(_label_text(label) for label in head)
        return self.to_text()

    def __str__(self) -> str:
        return self.to_text()

    def is_subdomain(self, other: Name) -> bool:
        """True when ``self`` is ``other`` or below it."""
        n = len(other.key)
        return n == 0 or (len(self.key) >= n and self.key[len(self.key) - n :] == other.key)

    def parent(self) -> Name:
        return Name(self.labels[1:])

    def prepend(self, label: bytes) -> Name:
        return Name((label, *self.labels))

    def to_wire(self) -> bytes:
        out = bytearray()
        for label in self.labels:
            out.append(len(label))
            out += label
        out.append(0)
        return bytes(out)


ROOT = Name(())


def pull_name(data: bytes, pos: int) -> tuple[Name, int]:
    """Decode the name at ``pos``; return it and the offset just after it."""
    labels: list[bytes] = []
    total = 1
    end = -1
    limit = pos  # each pointer must point strictly before the previous target
    n = len(data)
    while True:
        if pos >= n:
            raise DnsDecodeError("name runs past the end of the message")
        length = data[pos]
        if length == 0:
            if end < 0:
                end = pos + 1
            return Name(tuple(labels)), end
        kind = length & 0xC0
        if kind == 0xC0:
            if pos + 1 >= n:
                raise DnsDecodeError("truncated compression pointer")
            target = ((length & 0x3F) << 8) | data[pos + 1]
            if end < 0:
                end = pos + 2
            if target >= limit:
                raise DnsDecodeError("compression pointer does not point backwards")
            limit = target
            pos = target
            continue
        if kind != 0:
            raise DnsDecodeError(f"unsupported label type 0x{kind:02x}")
        if pos + 1 + length > n:
            raise DnsDecodeError("label runs past the end of the message")
        total += length + 1
        if total > MAX_NAME:
            raise DnsDecodeError("name longer than 255 octets")
        labels.append(bytes(data[pos + 1 : pos + 1 + length]))
        pos += 1 + length


class Compressor:
    """Offsets of the names already written into one message."""

    __slots__ = ("offsets",)

    def __init__(self) -> None:
        self.offsets: dict[tuple[bytes, ...], int] = {}


def push_name(buf: bytearray, name: Name, compressor: Compressor | None) -> None:
    """Append ``name``; with a compressor, point at a suffix already written."""
    labels = name.labels
    if compressor is None:
        for label in labels:
            buf.append(len(label))
            buf += label
        buf.append(0)
        return
    key = name.key
    offsets = compressor.offsets
    for i in range(len(labels)):
        suffix = key[i:]
        offset = offsets.get(suffix)
        if offset is not None:
            buf += (0xC000 | offset).to_bytes(2, "big")
            return
        here = len(buf)
        if here < 0x4000:
            offsets[suffix] = here
        label = labels[i]
        buf.append(len(label))
        buf += label
    buf.append(0)
