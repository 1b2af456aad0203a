"""The pieces of an image: cpio, ELF, the kernel-module walk, the QEMU command."""

from __future__ import annotations

import io
import json
import stat
import struct
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mirage.core import _builtin
from mirage.core.plugins import load_registry
from mirage.vm import _plugin
from mirage.vm._arch import ARCHES
from mirage.vm._cpio import CpioWriter
from mirage.vm._elf import ElfError, needed_libraries
from mirage.vm._image import _kernel_modules
from mirage.vm._target import _append, _noise, qemu_command


def read_cpio(data: bytes) -> list[tuple[str, int, bytes, tuple[int, int]]]:
    """A reader written from the newc description, to check the writer."""
    entries = []
    pos = 0
    while True:
        assert data[pos : pos + 6] == b"070701"
        fields = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = fields[11], fields[6]
        name_start = pos + 110
        name = data[name_start : name_start + namesize - 1].decode()
        data_start = name_start + namesize
        data_start += -data_start % 4
        body = data[data_start : data_start + filesize]
        pos = data_start + filesize
        pos += -pos % 4
        if name == "TRAILER!!!":
            return entries
        entries.append((name, fields[1], body, (fields[9], fields[10])))


def test_cpio_newc_layout() -> None:
    buf = io.BytesIO()
    cpio = CpioWriter(buf)
    cpio.directory("dev")
    cpio.char_device("dev/console", 5, 1)
    cpio.file("init", b"#!/bin/python\n", 0o755)
    cpio.file("a/odd-name.txt", b"x" * 5)
    cpio.symlink("lib64", "lib")
    cpio.close()
    data = buf.getvalue()
    assert len(data) % 4 == 0
    entries = read_cpio(data)
    assert [e[0] for e in entries] == ["dev", "dev/console", "init", "a/odd-name.txt", "lib64"]
    assert stat.S_ISCHR(entries[1][1]) and entries[1][3] == (5, 1)
    assert entries[2][1] == stat.S_IFREG | 0o755 and entries[2][2] == b"#!/bin/python\n"
    assert entries[3][2] == b"xxxxx"
    assert stat.S_ISLNK(entries[4][1]) and entries[4][2] == b"lib"
    with pytest.raises(ValueError, match="duplicate"):
        cpio.file("init", b"")


@given(
    st.dictionaries(
        st.from_regex(r"[a-z]{1,12}(/[a-z0-9._-]{1,12}){0,3}", fullmatch=True),
        st.binary(max_size=300),
        max_size=8,
    )
)
def test_cpio_round_trip(files: dict[str, bytes]) -> None:
    buf = io.BytesIO()
    cpio = CpioWriter(buf)
    for name, data in files.items():
        cpio.file(name, data)
    cpio.close()
    assert {e[0]: e[2] for e in read_cpio(buf.getvalue())} == files


def _elf64(needed: list[str]) -> bytes:
    """A minimal 64-bit little-endian ELF with one PT_LOAD and a PT_DYNAMIC."""
    strtab = b"\0" + b"".join(n.encode() + b"\0" for n in needed)
    offsets, pos = [], 1
    for n in needed:
        offsets.append(pos)
        pos += len(n) + 1
    phoff, phnum = 64, 2
    dyn_off = phoff + 56 * phnum
    dyn = b"".join(struct.pack("<qQ", 1, o) for o in offsets)
    strtab_off = dyn_off + len(dyn) + 16 * 3
    dyn += struct.pack("<qQ", 5, strtab_off) + struct.pack("<qQ", 10, len(strtab))
    dyn += struct.pack("<qQ", 0, 0)
    size = strtab_off + len(strtab)
    header = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    header += struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, phoff, 0, 0, 64, 56, phnum, 64, 0, 0)
    load = struct.pack("<IIQQQQQQ", 1, 5, 0, 0, 0, size, size, 0x1000)
    dynamic = struct.pack("<IIQQQQQQ", 2, 6, dyn_off, dyn_off, dyn_off, len(dyn), len(dyn), 8)
    return header + load + dynamic + dyn + strtab


def test_elf_needed_libraries() -> None:
    assert needed_libraries(_elf64(["libm.so.6", "libc.so.6"])) == ["libm.so.6", "libc.so.6"]
    assert needed_libraries(_elf64([])) == []


@given(st.binary(max_size=2000))
@example(_elf64(["libc.so.6"])[:100])
@example(b"\x7fELF\x02\x01" + b"\xff" * 200)
def test_elf_reader_is_total(data: bytes) -> None:
    try:
        assert isinstance(needed_libraries(data), list)
    except ElfError:
        pass


def test_kernel_module_dependencies_come_first(tmp_path: Path) -> None:
    base = tmp_path / "lib" / "modules" / "6.1" / "kernel" / "drivers"
    base.mkdir(parents=True)
    (base / "virtio_net.ko").write_bytes(
        b"junk\0depends=net_failover,virtio_ring\0name=virtio_net\0"
    )
    (base / "net_failover.ko").write_bytes(b"\0depends=failover\0")
    (base / "failover.ko").write_bytes(b"\0depends=\0")
    (base / "virtio_ring.ko").write_bytes(b"\0depends=\0")
    order = [p.name for p in _kernel_modules(tmp_path, "6.1", ["virtio_net", "built_in_one"])]
    assert order == ["failover.ko", "net_failover.ko", "virtio_ring.ko", "virtio_net.ko"]


def test_qemu_command_and_kernel_command_line(tmp_path: Path) -> None:
    (tmp_path / "web.vm.json").write_text(
        json.dumps(
            {"arch": "x86_64", "network": True, "memory": 256, "forward": "8080:80", "accel": "tcg"}
        )
    )
    command = qemu_command(tmp_path, "web", ["--port", "80"])
    assert command[:3] == ["qemu-system-x86_64", "-accel", "tcg"]
    assert "user,id=n0,hostfwd=tcp:127.0.0.1:8080-:80" in command
    append = command[command.index("-append") + 1]
    assert "console=ttyS0" in append and "MIRAGE_IPV4=10.0.2.15/24" in append
    assert "MIRAGE_ARGV=" in append
    assert _append(ARCHES["aarch64"], [], False) == "console=ttyAMA0 quiet panic=-1"


def test_console_noise_filter() -> None:
    assert _noise("SeaBIOS (version 1.16)\n")
    assert _noise("[    3.9] reboot: Power down\n")
    assert not _noise("[    3.9] Kernel panic - not syncing: Attempted to kill init!\n")
    assert not _noise("Hello World!\n")


def test_entry_point_registers_the_virtio_target_and_its_keys() -> None:
    (ep,) = [e for e in entry_points(group="mirage") if e.name == "vm"]
    assert ep.dist is not None and ep.dist.name == "mirage-vm"
    registry = load_registry(entrypoints=False, plugins=[("core", _builtin), ("vm", ep.load())])
    assert not registry.failures
    assert set(registry.targets) == {"virtio"}
    assert set(registry.keys) == {"net", "target"} | {k.name for k in _plugin.KEYS}
    assert not registry.impls


@given(st.binary(max_size=500))
def test_pvh_note_check_is_total(data: bytes) -> None:
    from mirage.vm._elf import has_pvh_entry

    assert has_pvh_entry(data) in (True, False)
