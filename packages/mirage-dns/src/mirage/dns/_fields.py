"""Field codecs for record data: one object per kind of field, each with a wire pair
(``pull``/``push``) and a presentation pair (``to_text``/``from_text``).

Record types (``_rdata``) are declared as lists of named fields, so every type gets a
total decoder, an encoder and both presentation directions from the same table.
``pull`` reads within ``[pos, end)`` and raises :class:`DnsDecodeError` on anything
short or malformed; ``from_text`` takes the record's tokens and an index and raises
``ValueError`` with a reason.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import re
import socket
import time
from typing import Any

from ._consts import type_from_text, type_to_text
from ._errors import DnsDecodeError
from ._name import Compressor, Name, pull_name, push_name

__all__ = ["Field", "Token", "parse_ttl", "charstring_to_text", "charstring_from_text"]

Token = tuple[str, bool]  # (text, was quoted)


def parse_ttl(text: str) -> int:
    """A TTL in seconds, or with BIND units (``1h30m``, ``2w``)."""
    if text.isdigit():
        value = int(text)
    else:
        parts = re.fullmatch(r"(?:\d+[smhdwSMHDW])+", text)
        if not parts:
            raise ValueError(f"bad TTL {text!r}")
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
        value = sum(int(n) * units[u.lower()] for n, u in re.findall(r"(\d+)([a-zA-Z])", text))
    if value > 0xFFFFFFFF:
        raise ValueError(f"TTL {text!r} out of range")
    return value


def charstring_to_text(data: bytes) -> str:
    out = ['"']
    for byte in data:
        if byte in (0x22, 0x5C):
            out.append("\\" + chr(byte))
        elif 0x20 <= byte <= 0x7E:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    out.append('"')
    return "".join(out)


def unescape(text: str) -> bytes:
    """Decode ``\\X`` and ``\\DDD`` escapes of presentation format."""
    if "\\" not in text:
        return text.encode("utf-8")
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 >= n:
                raise ValueError("text ends with a backslash")
            digits = text[i + 1 : i + 4]
            if len(digits) == 3 and digits.isdigit():
                value = int(digits)
                if value > 255:
                    raise ValueError(f"bad escape \\{digits}")
                out.append(value)
                i += 4
                continue
            out += text[i + 1].encode("utf-8")
            i += 2
            continue
        out += c.encode("utf-8")
        i += 1
    return bytes(out)


def charstring_from_text(token: str) -> bytes:
    data = unescape(token)
    if len(data) > 255:
        raise ValueError("character-string longer than 255 octets")
    return data


def _need(tokens: list[Token], i: int, what: str) -> str:
    if i >= len(tokens):
        raise ValueError(f"missing {what}")
    return tokens[i][0]


class Field:
    what = "field"

    def pull(self, data: bytes, pos: int, end: int) -> tuple[Any, int]:
        raise NotImplementedError

    def push(self, buf: bytearray, value: Any, comp: Compressor | None) -> None:
        raise NotImplementedError

    def to_text(self, value: Any) -> str:
        raise NotImplementedError

    def from_text(self, tokens: list[Token], i: int, origin: Name | None) -> tuple[Any, int]:
        raise NotImplementedError


class UInt(Field):
    def __init__(self, size: int, what: str = "integer") -> None:
        self.size = size
        self.what = what
        self.max = (1 << (8 * size)) - 1

    def pull(self, data: bytes, pos: int, end: int) -> tuple[int, int]:
        stop = pos + self.size
        if stop > end:
            raise DnsDecodeError(f"record data too short for its {self.what}")
        return int.from_bytes(data[pos:stop], "big"), stop

    def push(self, buf: bytearray, value: int, comp: Compressor | None) -> None:
        buf += value.to_bytes(self.size, "big")

    def to_text(self, value: int) -> str:
        return str(value)

    def from_text(self, tokens: list[Token], i: int, origin: Name | None) -> tuple[int, int]:
        text = _need(tokens, i, self.what)
        if not text.isdigit() or int(text) > self.max:
            raise ValueError(f"bad {self.what} {text!r}")
        return int(text), i + 1


class Ttl(UInt):
    """A 32-bit count of seconds that zone files may write with units."""

    def __init__(self, what: str) -> None:
        super().__init__(4, what)

    def from_text(self, tokens: list[Token], i: int, origin: Name | None) -> tuple[int, int]:
        return parse_ttl(_need(tokens, i, self.what)), i + 1


class RRTypeField(UInt):
    def __init__(self) -> None:
        super().__init__(2, "type")

    def to_text(self, value: int) -> str:
        return type_to_text(value)

    def from_text(self, tokens: list[Token], i: int, origin: Name | None) -> tuple[int, int]:
        return type_from_text(_need(tokens, i, "type")), i + 1


class Time(UInt):
    """RRSIG times: YYYYMMDDHHmmSS in text, or plain seconds."""

    def __init__(self, what: str) -> None:
        super().__init__(4, what)

    def to_text(self, value: int) -> str:
        return time.strftime("%Y%m%d%H%M%S", time.gmtime(value))

    def from_text(self, tokens: list[Token], i: int, origin: Name | None) -> tuple[int, int]:
        text = _need(tokens, i, self.what)
        if len(text) == 14 and text.isdigit():
            value = calendar.timegm(time.strptime(text, "%Y%m%d%H%M%S")) & 0xFFFFFFFF
            return value, i + 1
        return super().from_text(tokens, i, origin)


class NameField(Field):
    what = "name"

    def __init__(self, compress: bool = False) -> None:
        self.compress = compress

    def pull(self, data: bytes, pos: int, end: int) -> tuple[Name, int]:
        name, stop = pull_name(data, pos)
        if stop > end:
            raise DnsDecodeError("name runs past its record data")
        return name, stop

    def push(self, buf: bytearray, value: Name, comp: Compressor | None) -> None:
        push_name(buf, value, comp if self.compress else None)

    def to_text(self, value: Name) -> str:
        return value.to_text()

    def from_text(self, tokens: list[Token], i: int, origin: Name | None) -> tuple[Name, int]:
        return Name.from_text(_need(tokens, i, "name"), origin), i + 1


class IPv4(Field):
    what = "IPv4 address"

    def pull(self, data: bytes, pos: int, end: int) -> tuple[str, int]:
        if pos + 4 > end:
            raise DnsDecodeError("short IPv4 address")
        return socket.inet_ntop(socket.AF_INET, data[pos : pos + 4]), pos + 4

    def push(self, buf: bytearray, value: str, comp: Compressor | None) -> None:
        buf += socket.inet_pton(socket.AF_INET, value)

    def to_text(self, value: str) -> str:
        return value

    def from_text(self, tokens: list[Token], i: int, origin: Name | None) -> tuple[str, int]:
        text = _need(tokens, i, self.what)
        try:
            return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, text)), i + 1
        except OSError:
            raise ValueError(f"bad IPv4 address {text!r}") from None


class IPv6(Field):
    what = "IPv6 address"

    def pull(self, data: bytes, pos: int, end: int) -> tuple[str, int]:
        if pos + 16 > end:
            raise DnsDecodeError("short IPv6 address")
        return socket.inet_ntop(socket.AF_INET6, data[pos : pos + 16]), pos + 16

    def push(self, buf: bytearray, value: str, comp: Compressor | None) -> None:
        buf += socket.inet_pton(socket.AF_INET6, value)

    def to_text(self, value: str) -> str:
        return value

    def from_text(self, tokens: list[Token], i: int, origin: Name | None) -> tuple[str, int]:
        text = _need(tokens, i, self.what)
        try:
            packed = socket.inet_pton(socket.AF_INET6, text)
        except OSError:
            raise ValueError(f"bad IPv6 address {text!r}") from None
        return socket.inet_ntop(socket.AF_INET6, packed), i + 1


class CharString(Field):
    what = "character-string"

    def pull(self, data: bytes, pos: int, end: int) -> tuple[bytes, int]:
        if pos >= end:
            raise DnsDecodeError("missing character-string")
        stop = pos + 1 + data[pos]
        if stop > end:
            raise DnsDecodeError("character-string runs past its record data")
        return bytes(data[pos + 1 : stop]), stop

    def push(self, buf: bytearray, value: bytes, comp: Compressor | None) -> None:
        buf.append(len(value))
        buf += value

    def to_text(self, value: bytes) -> str:
        return charstring_to_text(value)

    def from_text(self, tokens: list[Token], i: int, origin: Name | None) -> tuple[bytes, int]:
        return charstring_from_text(_need(tokens, i, self.what)), i + 1


class Tag(CharString):
    """A CAA tag: a character-string written bare, letters and digits only."""

    what = "tag"

    def to_text(self, value: bytes) -> str:
        return value.decode("ascii", "replace")

    def from_text(self, tokens: list[Token], i: int, origin: Name | None) -> tuple[bytes, int]:
        text = _need(tokens, i, self.what)
        if not text.isalnum() or not text.isascii():
            raise ValueError(f"bad tag {text!r}")
        return text.encode("ascii"), i + 1


class CharStrings(Field):
    """One or more character-strings to the end of the record data (TXT)."""

    what = "character-strings"

    def pull(self, data: bytes, pos: int, end: int) -> tuple[tuple[bytes, ...], int]:
        out = []
        one = CharString()
        while pos < end:
            value, pos = one.pull(data, pos, end)
            out.append(value)
        if not out:
            raise DnsDecodeError("TXT record without a string")
        return tuple(out), pos

    def push(self, buf: bytearray, value: tuple[bytes, ...], comp: Compressor | None) -> None:
        for item in value:
            buf.append(len(item))
            buf += item

    def to_text(self, value: tuple[bytes, ...]) -> str:
        return " ".join(charstring_to_text(v) for v in value)

    def from_text(
        self, tokens: list[Token], i: int, origin: Name | None
    ) -> tuple[tuple[bytes, ...], int]:
        if i >= len(tokens):
            raise ValueError("missing character-string")
        return tuple(charstring_from_text(t) for t, _ in tokens[i:]), len(tokens)


class RestBytes(Field):
    """Bytes to the end of the record data, one quoted string in text (CAA value)."""

    what = "value"

    def pull(self, data: bytes, pos: int, end: int) -> tuple[bytes, int]:
        return bytes(data[pos:end]), end

    def push(self, buf: bytearray, value: bytes, comp: Compressor | None) -> None:
        buf += value

    def to_text(self, value: bytes) -> str:
        return charstring_to_text(value)

    def from_text(self, tokens: list[Token], i: int, origin: Name | None) -> tuple[bytes, int]:
        return unescape(_need(tokens, i, self.what)), i + 1


class Hex(RestBytes):
    """Bytes to the end, hexadecimal in text (may be split over several tokens)."""

    what = "hexadecimal data"

    def __init__(self, allow_empty: bool = False) -> None:
        self.allow_empty = allow_empty

    def to_text(self, value: bytes) -> str:
        return value.hex().upper() if value else "-"

    def from_text(self, tokens: list[Token], i: int, origin: Name | None) -> tuple[bytes, int]:
        text = "".join(t for t, _ in tokens[i:])
        if text == "-" and self.allow_empty:
            return b"", len(tokens)
        if not text and not self.allow_empty:
            raise ValueError("missing hexadecimal data")
        try:
            return bytes.fromhex(text), len(tokens)
        except ValueError:
            raise ValueError(f"bad hexadecimal data {text!r}") from None


class Base64(RestBytes):
    what = "base64 data"

    def to_text(self, value: bytes) -> str:
        return base64.b64encode(value).decode("ascii")

    def from_text(self, tokens: list[Token], i: int, origin: Name | None) -> tuple[bytes, int]:
        text = "".join(t for t, _ in tokens[i:])
        if not text:
            raise ValueError("missing base64 data")
        try:
            return base64.b64decode(text, validate=True), len(tokens)
        except binascii.Error:
            raise ValueError(f"bad base64 data {text[:40]!r}") from None


class ShortHex(Field):
    """A length octet and bytes; hex in text, ``-`` when empty (NSEC3 salt)."""

    what = "salt"

    def pull(self, data: bytes, pos: int, end: int) -> tuple[bytes, int]:
        return CharString().pull(data, pos, end)

    def push(self, buf: bytearray, value: bytes, comp: Compressor | None) -> None:
        buf.append(len(value))
        buf += value

    def to_text(self, value: bytes) -> str:
        return value.hex().upper() if value else "-"

    def from_text(self, tokens: list[Token], i: int, origin: Name | None) -> tuple[bytes, int]:
        text = _need(tokens, i, self.what)
        if text == "-":
            return b"", i + 1
        try:
            value = bytes.fromhex(text)
        except ValueError:
            raise ValueError(f"bad salt {text!r}") from None
        if len(value) > 255:
            raise ValueError("salt longer than 255 octets")
        return value, i + 1


_B32_STD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_B32_HEX = b"0123456789ABCDEFGHIJKLMNOPQRSTUV"
_TO_HEX = bytes.maketrans(_B32_STD, _B32_HEX)
_FROM_HEX = bytes.maketrans(_B32_HEX, _B32_STD)


class Base32Hash(ShortHex):
    """A length octet and bytes; base32hex without padding in text (NSEC3 next hash)."""

    what = "hash"

    def to_text(self, value: bytes) -> str:
        return base64.b32encode(value).translate(_TO_HEX).rstrip(b"=").decode("ascii")

    def from_text(self, tokens: list[Token], i: int, origin: Name | None) -> tuple[bytes, int]:
        text = _need(tokens, i, self.what).upper().encode("ascii", "replace")
        padded = text.translate(_FROM_HEX) + b"=" * (-len(text) % 8)
        try:
            value = base64.b32decode(padded)
        except binascii.Error:
            raise ValueError(f"bad base32hex hash {text!r}") from None
        if not value or len(value) > 255:
            raise ValueError("bad hash length")
        return value, i + 1


class TypeBitmap(Field):
    """The window/bitmap list of NSEC and NSEC3 (RFC 4034 section 4.1.2)."""

    what = "type bitmap"

    def pull(self, data: bytes, pos: int, end: int) -> tuple[tuple[int, ...], int]:
        types: list[int] = []
        last = -1
        while pos < end:
            if pos + 2 > end:
                raise DnsDecodeError("truncated type bitmap window")
            window, length = data[pos], data[pos + 1]
            if window <= last:
                raise DnsDecodeError("type bitmap windows out of order")
            if not 1 <= length <= 32 or pos + 2 + length > end:
                raise DnsDecodeError("bad type bitmap length")
            last = window
            for j, byte in enumerate(data[pos + 2 : pos + 2 + length]):
                for bit in range(8):
                    if byte & (0x80 >> bit):
                        types.append(window * 256 + j * 8 + bit)
            pos += 2 + length
        return tuple(types), pos

    def push(self, buf: bytearray, value: tuple[int, ...], comp: Compressor | None) -> None:
        windows: dict[int, bytearray] = {}
        for rtype in sorted(set(value)):
            bitmap = windows.setdefault(rtype >> 8, bytearray(32))
            bitmap[(rtype & 0xFF) >> 3] |= 0x80 >> (rtype & 7)
        for window, bitmap in sorted(windows.items()):
            length = 32
            while bitmap[length - 1] == 0:
                length -= 1
            buf.append(window)
            buf.append(length)
            buf += bitmap[:length]

    def to_text(self, value: tuple[int, ...]) -> str:
        return " ".join(type_to_text(t) for t in value)

    def from_text(
        self, tokens: list[Token], i: int, origin: Name | None
    ) -> tuple[tuple[int, ...], int]:
        return tuple(sorted({type_from_text(t) for t, _ in tokens[i:]})), len(tokens)


SVC_KEYS = {
    0: "mandatory",
    1: "alpn",
    2: "no-default-alpn",
    3: "port",
    4: "ipv4hint",
    5: "ech",
    6: "ipv6hint",
}
_SVC_BY_NAME = {v: k for k, v in SVC_KEYS.items()}


def _svc_key_text(key: int) -> str:
    return SVC_KEYS.get(key, f"key{key}")


def _svc_key_from_text(text: str) -> int:
    if text in _SVC_BY_NAME:
        return _SVC_BY_NAME[text]
    if text.startswith("key") and text[3:].isdigit() and int(text[3:]) <= 0xFFFF:
        return int(text[3:])
    raise ValueError(f"unknown SvcParamKey {text!r}")


def _svc_value_text(key: int, value: bytes) -> str | None:
    """Known keys in their own syntax; ``None`` when the value does not parse."""
    try:
        if key == 0:
            if len(value) % 2 or not value:
                return None
            keys = [int.from_bytes(value[i : i + 2], "big") for i in range(0, len(value), 2)]
            return ",".join(_svc_key_text(k) for k in keys)
        if key == 1:
            ids, pos = [], 0
            while pos < len(value):
                n = value[pos]
                item = value[pos + 1 : pos + 1 + n]
                if len(item) != n or not n:
                    return None
                text = charstring_to_text(item)[1:-1]
                ids.append(text.replace(",", "\\\\,"))
                pos += 1 + n
            return '"' + ",".join(ids) + '"' if ids else None
        if key == 2:
            return "" if not value else None
        if key == 3:
            return str(int.from_bytes(value, "big")) if len(value) == 2 else None
        if key == 4:
            if len(value) % 4 or not value:
                return None
            return ",".join(
                socket.inet_ntop(socket.AF_INET, value[i : i + 4]) for i in range(0, len(value), 4)
            )
        if key == 5:
            return base64.b64encode(value).decode("ascii")
        if key == 6:
            if len(value) % 16 or not value:
                return None
            return ",".join(
                socket.inet_ntop(socket.AF_INET6, value[i : i + 16])
                for i in range(0, len(value), 16)
            )
    except (ValueError, OSError):
        return None
    return None


def _svc_value_from_text(key: int, text: str | None) -> bytes:
    if key == 2:
        if text:
            raise ValueError("no-default-alpn takes no value")
        return b""
    if text is None:
        if key > 6:
            return b""
        raise ValueError(f"SvcParam {_svc_key_text(key)} needs a value")
    if key == 0:
        return b"".join(_svc_key_from_text(k).to_bytes(2, "big") for k in text.split(","))
    if key == 1:
        out = bytearray()
        for item in re.split(r"(?<!\\),", text):
            raw = unescape(item.replace("\\,", ","))
            if not raw or len(raw) > 255:
                raise ValueError("bad alpn id")
            out.append(len(raw))
            out += raw
        return bytes(out)
    if key == 3:
        if not text.isdigit() or int(text) > 0xFFFF:
            raise ValueError(f"bad port {text!r}")
        return int(text).to_bytes(2, "big")
    try:
        if key == 4:
            return b"".join(socket.inet_pton(socket.AF_INET, a) for a in text.split(","))
        if key == 6:
            return b"".join(socket.inet_pton(socket.AF_INET6, a) for a in text.split(","))
    except OSError:
        raise ValueError(f"bad address list {text!r}") from None
    if key == 5:
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error:
            raise ValueError("bad ech value") from None
    return unescape(text)


class SvcParams(Field):
    """SVCB/HTTPS parameters (RFC 9460): ``((key, value-bytes), ...)`` in key order."""

    what = "SvcParams"

    def pull(self, data: bytes, pos: int, end: int) -> tuple[tuple[tuple[int, bytes], ...], int]:
        out: list[tuple[int, bytes]] = []
        last = -1
        while pos < end:
            if pos + 4 > end:
                raise DnsDecodeError("truncated SvcParam")
            key = int.from_bytes(data[pos : pos + 2], "big")
            length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            if key <= last:
                raise DnsDecodeError("SvcParam keys not in increasing order")
            if pos + 4 + length > end:
                raise DnsDecodeError("SvcParam value runs past its record data")
            out.append((key, bytes(data[pos + 4 : pos + 4 + length])))
            last = key
            pos += 4 + length
        return tuple(out), pos

    def push(
        self, buf: bytearray, value: tuple[tuple[int, bytes], ...], comp: Compressor | None
    ) -> None:
        for key, item in value:
            buf += key.to_bytes(2, "big") + len(item).to_bytes(2, "big")
            buf += item

    def to_text(self, value: tuple[tuple[int, bytes], ...]) -> str:
        parts = []
        for key, item in value:
            text = _svc_value_text(key, item)
            if text is None:
                parts.append(f"key{key}={charstring_to_text(item)}")
            elif text == "" and key == 2:
                parts.append("no-default-alpn")
            else:
                parts.append(f"{_svc_key_text(key)}={text}")
        return " ".join(parts)

    def from_text(
        self, tokens: list[Token], i: int, origin: Name | None
    ) -> tuple[tuple[tuple[int, bytes], ...], int]:
        params: dict[int, bytes] = {}
        j = i
        while j < len(tokens):
            text, _ = tokens[j]
            key_text, eq, value = text.partition("=")
            if eq and not value and j + 1 < len(tokens) and tokens[j + 1][1]:
                value = tokens[j + 1][0]
                j += 1
            key = _svc_key_from_text(key_text)
            if key in params:
                raise ValueError(f"SvcParam {key_text} given twice")
            params[key] = _svc_value_from_text(key, value if eq else None)
            j += 1
        return tuple(sorted(params.items())), j
