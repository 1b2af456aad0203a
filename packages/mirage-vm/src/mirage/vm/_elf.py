"""Just enough of ELF to list the shared libraries a binary needs (DT_NEEDED).

Reads 64- and 32-bit, little- and big-endian files: the dynamic segment (PT_DYNAMIC)
and the string table it points at. Anything malformed gives :class:`ElfError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["ElfError", "library_closure", "needed_libraries", "without_sections"]

_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL, _DT_NEEDED, _DT_STRTAB, _DT_STRSZ = 0, 1, 5, 10


class ElfError(ValueError):
    pass


def needed_libraries(data: bytes) -> list[str]:
    """The DT_NEEDED entries of an ELF file, in order."""
    try:
        return _needed(data)
    except (struct.error, IndexError, UnicodeDecodeError, ValueError, OverflowError) as exc:
        raise ElfError(f"malformed ELF file: {exc}") from None


def library_closure(binaries: Iterable[bytes], lib_dirs: Sequence[Path]) -> dict[str, Path] | str:
    """The shared libraries ``binaries`` need, transitively (soname -> the file in the
    first of ``lib_dirs`` that holds it), or the soname of the first one missing."""
    found: dict[str, Path] = {}
    todo = list(binaries)
    while todo:
        for soname in needed_libraries(todo.pop()):
            if soname in found:
                continue
            path = next((d / soname for d in lib_dirs if (d / soname).exists()), None)
            if path is None:
                return soname
            found[soname] = path.resolve()
            todo.append(found[soname].read_bytes())
    return found


def _needed(data: bytes) -> list[str]:
    if data[:4] != b"\x7fELF":
        raise ElfError("not an ELF file")
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if is64:
        (phoff,) = struct.unpack_from(end + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x36)
    else:
        (phoff,) = struct.unpack_from(end + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x2A)
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
    dynamic: tuple[int, int] | None = None
    for i in range(phnum):
        base = phoff + i * phentsize
        if is64:
            p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
                end + "IIQQQQ", data, base
            )
        else:
            p_type, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(end + "IIIII", data, base)
        if p_type == _PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == _PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return []  # statically linked
    entry = struct.Struct(end + ("qQ" if is64 else "iI"))
    needed: list[int] = []
    strtab = strsz = 0
    offset, size = dynamic
    for pos in range(offset, offset + size, entry.size):
        tag, value = entry.unpack_from(data, pos)
        if tag == _DT_NULL:
            break
        if tag == _DT_NEEDED:
            needed.append(value)
        elif tag == _DT_STRTAB:
            strtab = value
        elif tag == _DT_STRSZ:
            strsz = value

    def file_offset(vaddr: int) -> int:
        for start, off, filesz in loads:
            if start <= vaddr < start + filesz:
                return vaddr - start + off
        raise ElfError(f"address {vaddr:#x} is in no loaded segment")

    table = file_offset(strtab)
    names = []
    for index in needed:
        if index >= strsz:
            raise ElfError("DT_NEEDED points past the string table")
        stop = data.index(b"\0", table + index)
        names.append(data[table + index : stop].decode())
    return names


_PT_NOTE = 4
XEN_ELFNOTE_PHYS32_ENTRY = 18


def has_pvh_entry(data: bytes) -> bool:
    """Whether an ELF kernel carries Xen's PVH entry note (``XEN_ELFNOTE_PHYS32_ENTRY``)."""
    try:
        if data[:4] != b"\x7fELF" or data[4] != 2:
            return False
        end = "<" if data[5] == 1 else ">"
        (phoff,) = struct.unpack_from(end + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x36)
        for i in range(phnum):
            p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(
                end + "IIQQQQ", data, phoff + i * phentsize
            )
            if p_type != _PT_NOTE:
                continue
            pos, stop = p_offset, p_offset + p_filesz
            while pos + 12 <= stop:
                namesz, descsz, note_type = struct.unpack_from(end + "III", data, pos)
                name = data[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
                if name == b"Xen" and note_type == XEN_ELFNOTE_PHYS32_ENTRY:
                    return True
                pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
        return False
    except (struct.error, IndexError, ValueError, OverflowError):
        return False


def without_sections(data: bytes) -> bytes:
    """A 64-bit ELF file without what its program headers do not cover: the section
    headers and the sections outside every segment (symbol tables, debugging
    information, comments), which the dynamic loader never reads. Anything else, or
    a file whose section headers do not come after its segments, is returned as is."""
    try:
        if data[:4] != b"\x7fELF" or data[4] != 2:
            return data
        end = "<" if data[5] == 1 else ">"
        (phoff,) = struct.unpack_from(end + "Q", data, 0x20)
        (shoff,) = struct.unpack_from(end + "Q", data, 0x28)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x36)
        if phentsize < 56 or phnum == 0:
            return data
        last = max(64, phoff + phentsize * phnum)
        for i in range(phnum):
            _, _, p_offset, _, _, p_filesz = struct.unpack_from(
                end + "IIQQQQ", data, phoff + i * phentsize
            )
            last = max(last, p_offset + p_filesz)
        if last > len(data) or shoff < last:
            return data
        header = bytearray(data[:last])
        struct.pack_into(end + "Q", header, 0x28, 0)  # e_shoff
        struct.pack_into(end + "HH", header, 0x3C, 0, 0)  # e_shnum, e_shstrndx
        return bytes(header)
    except (struct.error, IndexError, OverflowError):
        return data
