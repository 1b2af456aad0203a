"""Flattened device trees (DTB): a total decoder and an encoder of our own.

Theory of operation. A blob is a 40-byte header, a memory reservation map (pairs of
big-endian u64 address and size, ended by a pair of zeros), a structure block (a
stream of big-endian u32 tokens: ``BEGIN_NODE`` + NUL-terminated name padded to 4,
``PROP`` + length + name offset + value padded to 4, ``END_NODE``, ``NOP``, and one
final ``END``) and a strings block (the NUL-terminated property names that ``PROP``
tokens point into).

:func:`pull_fdt` turns bytes into a :class:`DeviceTree` (a tree of mutable
:class:`Node` objects whose properties are raw bytes) or raises :class:`FdtError`,
never anything else. :func:`push_fdt` writes one back. A decoded tree remembers where
its blocks were, how large the blob was and its strings block, so that an unchanged
tree encodes to the very same bytes (QEMU's dumped ``virt`` tree, with its 1 MiB of
padding, included); an edited one keeps that layout where it still fits. ``NOP``
tokens are dropped on reading.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

__all__ = [
    "FDT_MAGIC",
    "DeviceTree",
    "FdtError",
    "FdtErrorCode",
    "Layout",
    "Node",
    "Token",
    "cells",
    "pull_fdt",
    "push_fdt",
    "string",
    "strings",
    "u32",
    "u64",
]

FDT_MAGIC = 0xD00DFEED
_HEADER = struct.Struct(">10I")
_RESERVE = struct.Struct(">QQ")
_WORD = struct.Struct(">I")
_PROP_HEAD = struct.Struct(">III")  # the token, the value's length, the name's offset
VERSION = 17
LAST_COMPATIBLE = 16
MAX_DEPTH = 64


class Token(enum.IntEnum):
    """Structure-block tokens."""

    BEGIN_NODE = 1
    END_NODE = 2
    PROP = 3
    NOP = 4
    END = 9


class FdtErrorCode(enum.IntEnum):
    """libfdt's error numbers (returned negated by its functions)."""

    NOTFOUND = 1
    EXISTS = 2
    NOSPACE = 3
    BADOFFSET = 4
    BADPATH = 5
    BADPHANDLE = 6
    BADSTATE = 7
    TRUNCATED = 8
    BADMAGIC = 9
    BADVERSION = 10
    BADSTRUCTURE = 11
    BADLAYOUT = 12
    INTERNAL = 13
    BADNCELLS = 14
    BADVALUE = 15
    BADOVERLAY = 16
    NOPHANDLES = 17
    BADFLAGS = 18
    ALIGNMENT = 19


class FdtError(ValueError):
    """A blob that is not a device tree, or a lookup that fails, with libfdt's code."""

    def __init__(self, code: FdtErrorCode, message: str) -> None:
        super().__init__(f"{message} (FDT_ERR_{code.name})")
        self.code = code


# -- property values -------------------------------------------------------------------


def u32(*values: int) -> bytes:
    """Cells: each value as a big-endian u32."""
    return b"".join(struct.pack(">I", v) for v in values)


def u64(*values: int) -> bytes:
    """Each value as two cells (big-endian u64)."""
    return b"".join(struct.pack(">Q", v) for v in values)


def string(value: str) -> bytes:
    return value.encode() + b"\0"


def strings(values: Iterable[str]) -> bytes:
    """A string list (``compatible = "a", "b"``)."""
    return b"".join(string(v) for v in values)


def cells(value: bytes) -> tuple[int, ...]:
    """The u32 cells of a property value."""
    if len(value) % 4:
        raise FdtError(FdtErrorCode.BADVALUE, f"a {len(value)}-byte value is not u32 cells")
    return struct.unpack(f">{len(value) // 4}I", value)


def _strings_of(value: bytes) -> list[str]:
    if not value.endswith(b"\0"):
        raise FdtError(FdtErrorCode.BADVALUE, "a string value must end with NUL")
    try:
        return value[:-1].decode().split("\0")
    except UnicodeDecodeError:
        raise FdtError(FdtErrorCode.BADVALUE, "a string value is not UTF-8") from None


# -- the tree ---------------------------------------------------------------------------


@dataclass(eq=True)
class Node:
    """A node: a name (``unit@address``), properties in order, children in order."""

    name: str
    props: dict[str, bytes] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    # The padding bytes a decoded blob had after each property value (and, under the
    # key "", after the node name). libfdt does not clear them when it moves a
    # structure block about, so QEMU's blobs hold old bytes there; keeping them makes
    # an unchanged tree encode to the same bytes.
    padding: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)

    def child(self, name: str) -> Node | None:
        for node in self.children:
            if node.name == name:
                return node
        # "memory" finds "memory@40000000" when it is the only one so named.
        matches = [n for n in self.children if n.name.split("@")[0] == name]
        return matches[0] if len(matches) == 1 and "@" not in name else None

    def add(self, name: str) -> Node:
        """A new child (an error if one of that name exists)."""
        if any(n.name == name for n in self.children):
            raise FdtError(FdtErrorCode.EXISTS, f"node {name!r} exists")
        _check_name(name)
        node = Node(name)
        self.children.append(node)
        return node

    def remove(self, name: str) -> Node:
        node = self.child(name)
        if node is None:
            raise FdtError(FdtErrorCode.NOTFOUND, f"no node {name!r}")
        self.children.remove(node)
        return node

    # typed property access
    def u32(self, name: str) -> int:
        values = self.cells(name)
        if len(values) != 1:
            raise FdtError(FdtErrorCode.BADVALUE, f"property {name!r} is not one cell")
        return values[0]

    def cells(self, name: str) -> tuple[int, ...]:
        return cells(self.prop(name))

    def string(self, name: str) -> str:
        values = _strings_of(self.prop(name))
        if len(values) != 1:
            raise FdtError(FdtErrorCode.BADVALUE, f"property {name!r} is a string list")
        return values[0]

    def strings(self, name: str) -> list[str]:
        return _strings_of(self.prop(name))

    def prop(self, name: str) -> bytes:
        try:
            return self.props[name]
        except KeyError:
            raise FdtError(FdtErrorCode.NOTFOUND, f"no property {name!r}") from None

    def set(self, name: str, value: bytes | str | int | list[str] | tuple[int, ...]) -> None:
        """Set a property: bytes as they are, a str as a string, an int as one cell,
        a list of str as a string list, a tuple of int as cells."""
        if isinstance(value, bytes):
            data = value
        elif isinstance(value, str):
            data = string(value)
        elif isinstance(value, int):
            data = u32(value)
        elif isinstance(value, list):
            data = strings(value)
        else:
            data = u32(*value)
        _check_name(name)
        self.props[name] = data

    def walk(self, path: str = "") -> Iterator[tuple[str, Node]]:
        """Every node below and including this one, with its path, depth first."""
        yield (path or "/"), self
        for node in self.children:
            yield from node.walk(f"{path}/{node.name}")


def _check_name(name: str) -> None:
    if not name or "/" in name or "\0" in name or not name.isascii():
        raise FdtError(FdtErrorCode.BADPATH, f"{name!r} is not a node or property name")


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a decoded blob had its blocks, its size, and its strings block."""

    off_mem_rsvmap: int
    off_dt_struct: int
    off_dt_strings: int
    totalsize: int
    strings_block: bytes


@dataclass
class DeviceTree:
    """A flattened device tree: the root node, memory reservations and boot CPU."""

    root: Node = field(default_factory=lambda: Node(""))
    reservations: list[tuple[int, int]] = field(default_factory=list)
    boot_cpuid_phys: int = 0
    # How a decoded tree was stored, not what it is: not compared.
    layout: Layout | None = field(default=None, compare=False)

    def find(self, path: str) -> Node | None:
        """The node at an absolute path (``/chosen``, ``/pl011@9000000``), or None."""
        if not path.startswith("/"):
            return None
        node: Node | None = self.root
        for part in filter(None, path.split("/")):
            node = node.child(part) if node is not None else None
        return node

    def get(self, path: str) -> Node:
        node = self.find(path)
        if node is None:
            raise FdtError(FdtErrorCode.NOTFOUND, f"no node {path}")
        return node

    def ensure(self, path: str) -> Node:
        """The node at ``path``, made (with its parents) if missing."""
        if not path.startswith("/"):
            raise FdtError(FdtErrorCode.BADPATH, f"{path!r} is not an absolute path")
        node = self.root
        for part in filter(None, path.split("/")):
            node = node.child(part) or node.add(part)
        return node


# -- decoding ---------------------------------------------------------------------------


def _bad(message: str, code: FdtErrorCode = FdtErrorCode.BADSTRUCTURE) -> FdtError:
    return FdtError(code, message)


def _cstring(block: bytes, start: int, what: str) -> tuple[str, int]:
    end = block.find(b"\0", start)
    if end < 0:
        raise _bad(f"{what} has no terminating NUL", FdtErrorCode.TRUNCATED)
    raw = block[start:end]
    if not raw.isascii():
        raise _bad(f"{what} is not ASCII")
    return raw.decode("ascii"), end


def pull_fdt(data: bytes) -> DeviceTree:
    """Decode a blob; :class:`FdtError` for anything that is not a valid tree."""
    if len(data) < _HEADER.size:
        raise _bad("shorter than a header", FdtErrorCode.TRUNCATED)
    (
        magic,
        totalsize,
        off_struct,
        off_strings,
        off_rsvmap,
        version,
        last_comp,
        boot_cpuid,
        size_strings,
        size_struct,
    ) = _HEADER.unpack_from(data)
    if magic != FDT_MAGIC:
        raise _bad(f"bad magic {magic:#x}", FdtErrorCode.BADMAGIC)
    if version < VERSION or last_comp > VERSION:
        raise _bad(f"version {version} (compatible {last_comp})", FdtErrorCode.BADVERSION)
    if totalsize > len(data) or totalsize < _HEADER.size:
        raise _bad(f"total size {totalsize} but {len(data)} bytes", FdtErrorCode.TRUNCATED)
    for name, offset, size in (
        ("reservation map", off_rsvmap, 0),
        ("structure block", off_struct, size_struct),
        ("strings block", off_strings, size_strings),
    ):
        if offset < _HEADER.size or offset + size > totalsize:
            raise _bad(f"the {name} lies outside the blob", FdtErrorCode.BADLAYOUT)
    if off_rsvmap % 8 or off_struct % 4 or size_struct % 4:
        raise _bad("misaligned blocks", FdtErrorCode.ALIGNMENT)
    blob = data[:totalsize]
    reservations = []
    pos = off_rsvmap
    while True:
        if pos + _RESERVE.size > totalsize:
            raise _bad("the reservation map has no end", FdtErrorCode.TRUNCATED)
        address, size = _RESERVE.unpack_from(blob, pos)
        pos += _RESERVE.size
        if address == 0 and size == 0:
            break
        reservations.append((address, size))
    strings_block = blob[off_strings : off_strings + size_strings]
    root = _pull_struct(blob[off_struct : off_struct + size_struct], strings_block)
    layout = Layout(off_rsvmap, off_struct, off_strings, totalsize, strings_block)
    return DeviceTree(root, reservations, boot_cpuid, layout)


def _pull_struct(block: bytes, strings_block: bytes) -> Node:
    pos = 0
    stack: list[Node] = []
    root: Node | None = None
    seen_names: list[set[str]] = []
    names: dict[int, str] = {}
    size = len(block)

    def word() -> int:
        nonlocal pos
        if pos + 4 > size:
            raise _bad("the structure block ends early", FdtErrorCode.TRUNCATED)
        (value,) = _WORD.unpack_from(block, pos)
        pos += 4
        return int(value)

    while True:
        token = word()
        if token == Token.NOP:
            continue
        if token == Token.BEGIN_NODE:
            name, end = _cstring(block, pos, "a node name")
            pos = (end + 4) & ~3
            if pos > len(block):
                raise _bad("a node name runs past the block", FdtErrorCode.TRUNCATED)
            name_pad = block[end + 1 : pos]
            if not stack:
                if root is not None:
                    raise _bad("a second root node")
                if name:
                    raise _bad("the root node has a name")
                node = root = Node("")
            else:
                if not name or "/" in name:
                    raise _bad(f"bad node name {name!r}")
                if name in seen_names[-1]:
                    raise _bad(f"two nodes named {name!r}")
                seen_names[-1].add(name)
                node = Node(name)
                stack[-1].children.append(node)
            if name_pad.strip(b"\0"):
                node.padding[""] = name_pad
            if len(stack) >= MAX_DEPTH:
                raise _bad(f"nodes nested deeper than {MAX_DEPTH}")
            stack.append(node)
            seen_names.append(set())
        elif token == Token.PROP:
            if not stack:
                raise _bad("a property outside any node")
            length = word()
            nameoff = word()
            name = names.get(nameoff, "")
            if not name:
                if nameoff >= len(strings_block):
                    raise _bad(
                        "a property name lies outside the strings block", FdtErrorCode.BADOFFSET
                    )
                name, _ = _cstring(strings_block, nameoff, "a property name")
                if not name:
                    raise _bad("an empty property name")
                names[nameoff] = name
            if pos + length > len(block):
                raise _bad("a property value runs past the block", FdtErrorCode.TRUNCATED)
            if name in stack[-1].props:
                raise _bad(f"two properties named {name!r}")
            if stack[-1].children:
                raise _bad("a property after a subnode")
            stack[-1].props[name] = block[pos : pos + length]
            end = pos + length
            pos = (end + 3) & ~3
            if pos > len(block):
                raise _bad("a property's padding runs past the block", FdtErrorCode.TRUNCATED)
            if block[end:pos].strip(b"\0"):
                stack[-1].padding[name] = block[end:pos]
        elif token == Token.END_NODE:
            if not stack:
                raise _bad("END_NODE outside any node")
            stack.pop()
            seen_names.pop()
        elif token == Token.END:
            if stack or root is None:
                raise _bad("END inside a node, or before the root")
            if pos != len(block):
                raise _bad("bytes after END in the structure block")
            return root
        else:
            raise _bad(f"unknown token {token:#x}")


# -- encoding ---------------------------------------------------------------------------


class _Strings:
    def __init__(self, initial: bytes) -> None:
        self.block = bytearray(initial)
        self.known: dict[str, int] = {}

    def offset(self, name: str) -> int:
        known = self.known.get(name)
        if known is None:
            known = self.known[name] = self._offset(name)
        return known

    def _offset(self, name: str) -> int:
        wanted = name.encode("ascii") + b"\0"
        # Prefer a string of its own to the tail of a longer one (libfdt may share
        # tails, but a blob that did not should encode as it was).
        at = self.block.find(wanted)
        first = at
        while at > 0 and self.block[at - 1] != 0:
            at = self.block.find(wanted, at + 1)
        if at < 0:
            at = first
        if at < 0:
            at = len(self.block)
            self.block += wanted
        return at


_BEGIN_NODE = _WORD.pack(Token.BEGIN_NODE)
_END_NODE = _WORD.pack(Token.END_NODE)


def _pad(node: Node, key: str, length: int) -> bytes:
    size = -length % 4
    kept = node.padding.get(key, b"")
    return kept if len(kept) == size else b"\0" * size


def _push_struct(root: Node, names: _Strings) -> bytes:
    out = bytearray()
    todo: list[Node | None] = [root]
    while todo:
        node = todo.pop()
        if node is None:
            out += _END_NODE
            continue
        raw = node.name.encode("ascii") + b"\0"
        out += _BEGIN_NODE + raw + _pad(node, "", len(raw))
        for name, value in node.props.items():
            out += _PROP_HEAD.pack(Token.PROP, len(value), names.offset(name))
            out += value
            if len(value) % 4:
                out += _pad(node, name, len(value))
        todo.append(None)
        todo.extend(reversed(node.children))
    out += u32(Token.END)
    return bytes(out)


def push_fdt(tree: DeviceTree, *, keep_layout: bool = True) -> bytes:
    """Encode a tree; with ``keep_layout`` and a decoded tree's layout, blocks go where
    they were (later, if an earlier one grew) and the blob keeps at least its size."""
    layout = tree.layout if keep_layout else None
    names = _Strings(layout.strings_block if layout else b"")
    struct_block = _push_struct(tree.root, names)
    rsvmap = b"".join(_RESERVE.pack(a, s) for a, s in [*tree.reservations, (0, 0)])
    blocks = {"rsvmap": rsvmap, "struct": struct_block, "strings": bytes(names.block)}
    align = {"rsvmap": 8, "struct": 4, "strings": 1}
    if layout is None:
        wanted = {"rsvmap": _HEADER.size, "struct": 0, "strings": 0}
        size = 0
    else:
        wanted = {
            "rsvmap": layout.off_mem_rsvmap,
            "struct": layout.off_dt_struct,
            "strings": layout.off_dt_strings,
        }
        size = layout.totalsize
    offsets: dict[str, int] = {}
    end = _HEADER.size
    for name in sorted(blocks, key=lambda n: (wanted[n] == 0, wanted[n])):
        start = max(wanted[name], end)
        start += -start % align[name]
        offsets[name] = start
        end = start + len(blocks[name])
    total = max(size, end)
    out = bytearray(total)
    _HEADER.pack_into(
        out,
        0,
        FDT_MAGIC,
        total,
        offsets["struct"],
        offsets["strings"],
        offsets["rsvmap"],
        VERSION,
        LAST_COMPATIBLE,
        tree.boot_cpuid_phys,
        len(blocks["strings"]),
        len(struct_block),
    )
    for name, block in blocks.items():
        out[offsets[name] : offsets[name] + len(block)] = block
    return bytes(out)
