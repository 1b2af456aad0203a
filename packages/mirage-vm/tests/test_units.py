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

from mirage.core import MirageError, _builtin
from mirage.core.plugins import load_registry
from mirage.vm import _plugin
from mirage.vm._arch import ARCHES
from mirage.vm._console import ConsoleFilter, Seen
from mirage.vm._cpio import CpioWriter
from mirage.vm._elf import ElfError, needed_libraries
from mirage.vm._image import _kernel_modules
from mirage.vm._net import (
    Netdev,
    guest_network,
    parse_netdev,
    qemu_netdev_args,
    split_run_options,
)
from mirage.vm._target import kernel_command_line, qemu_command


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


def _notes(stack: str | None, net: str = "user", forward: str = "") -> dict[str, object]:
    return {
        "arch": "x86_64",
        "network": stack is not None,
        "stack": stack,
        "runtime_args": ["interface", "ipv4", "ipv4-gateway", "port"],
        "net": net,
        "forward": forward,
        "memory": 256,
        "accel": "tcg",
    }


def _append_of(command: list[str]) -> str:
    return command[command.index("-append") + 1]


def _guest_argv(append: str) -> list[str]:
    import base64

    encoded = next(w for w in append.split() if w.startswith("MIRAGE_ARGV="))
    return list(json.loads(base64.urlsafe_b64decode(encoded.partition("=")[2])))


def test_our_stack_gets_the_nic_and_address_as_runtime_arguments(tmp_path: Path) -> None:
    (tmp_path / "web.vm.json").write_text(json.dumps(_notes("direct", forward="8080:80")))
    command = qemu_command(tmp_path, "web", ["--port", "80"])
    assert command[:3] == ["qemu-system-x86_64", "-accel", "tcg"]
    assert "user,id=n0,hostfwd=tcp:127.0.0.1:8080-:80" in command
    append = _append_of(command)
    # The kernel gets no address: the NIC belongs to our stack.
    assert "console=ttyS0" in append and "MIRAGE_IPV4" not in append
    assert _guest_argv(append) == [
        "--interface",
        "eth0",
        "--ipv4",
        "10.0.2.15/24",
        "--ipv4-gateway",
        "10.0.2.2",
        "--port",
        "80",
    ]


def test_the_guest_kernel_stack_is_configured_by_init(tmp_path: Path) -> None:
    (tmp_path / "web.vm.json").write_text(json.dumps(_notes("kernel")))
    append = _append_of(qemu_command(tmp_path, "web", ["--port", "80"]))
    assert "MIRAGE_IPV4=10.0.2.15/24" in append and "MIRAGE_GATEWAY=10.0.2.2" in append
    assert _guest_argv(append) == ["--port", "80"]


def test_run_options_choose_the_host_side(tmp_path: Path) -> None:
    (tmp_path / "web.vm.json").write_text(json.dumps(_notes("direct", forward="8080:80")))
    options, argv = split_run_options(
        ["--port", "80", "--vm-net", "dgram:unix:/q.sock,unix:/h.sock", "--vm-forward="]
    )
    assert argv == ["--port", "80"]
    command = qemu_command(tmp_path, "web", argv, options)
    assert (
        "dgram,id=n0,local.type=unix,local.path=/q.sock,remote.type=unix,remote.path=/h.sock"
        in command
    )
    # Off QEMU's user network the guest takes the link's default address, no gateway.
    assert _guest_argv(_append_of(command))[:4] == ["--interface", "eth0", "--ipv4", "10.0.0.2/24"]
    options, _ = split_run_options(["--vm-net=tap:tap7"])
    command = qemu_command(tmp_path, "web", [], options)
    assert "tap,id=n0,ifname=tap7,script=no,downscript=no,vnet_hdr=off" in command
    with pytest.raises(MirageError, match="needs a value"):
        split_run_options(["--vm-net"])


def test_an_image_without_a_nic_has_no_network(tmp_path: Path) -> None:
    (tmp_path / "h.vm.json").write_text(json.dumps(_notes(None)))
    command = qemu_command(tmp_path, "h", [])
    assert "-netdev" not in command
    assert _append_of(command) == "console=ttyS0 quiet panic=-1 acpi=noirq pci=nomsi"
    with pytest.raises(MirageError, match="no network device"):
        qemu_command(tmp_path, "h", [], {"net": "user"})


def test_netdev_specs() -> None:
    assert parse_netdev(None) == Netdev("user")
    assert parse_netdev("user", "80:8080,81:8081").forwards == ((80, 8080), (81, 8081))
    udp = parse_netdev("dgram:udp:127.0.0.1:5000,udp:127.0.0.1:5001")
    assert qemu_netdev_args(udp)[1] == (
        "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=5000,"
        "remote.type=inet,remote.host=127.0.0.1,remote.port=5001"
    )
    assert parse_netdev(udp.spec) == udp and parse_netdev("tap:t0").spec == "tap:t0"
    for bad, forward in [
        ("dgram:unix:/a", None),
        ("dgram:tcp:1,unix:/b", None),
        ("tap:", None),
        ("tap:" + "x" * 16, None),
        ("bridge", None),
        ("user", "80"),
        ("tap:t0", "80:80"),
    ]:
        with pytest.raises(MirageError):
            parse_netdev(bad, forward)


@given(st.text(max_size=60), st.text(max_size=20))
@example("dgram:udp::1,unix:", "")
def test_netdev_parser_is_total(spec: str, forward: str) -> None:
    try:
        netdev = parse_netdev(spec, forward)
    except MirageError:
        return
    assert parse_netdev(netdev.spec, forward if netdev.kind == "user" else None) == netdev
    assert qemu_netdev_args(netdev)[0] == "-netdev"


def test_our_stack_arguments_only_where_the_image_has_them() -> None:
    words, argv = guest_network(["port"], "direct", Netdev("user"), ["--port", "1"])
    assert words == [] and argv == ["--port", "1"]
    assert guest_network([], None, Netdev("user"), ["-x"]) == ([], ["-x"])


def test_kernel_command_line_limit() -> None:
    assert kernel_command_line("ttyAMA0", [], []) == "console=ttyAMA0 quiet panic=-1"
    with pytest.raises(MirageError, match="command line"):
        kernel_command_line("ttyS0", [], ["x" * 2000])


def test_console_filter_on_a_bare_machine() -> None:
    console = ConsoleFilter()
    assert console.feed("SeaBIOS (version 1.16)\n") == Seen()
    assert console.feed("\x1b[2J\x1b[HBooting from ROM..Hello World!\r\n") == Seen("Hello World!")
    assert console.feed("[    3.9] reboot: Power down\n") == Seen()
    panic = "[    3.9] Kernel panic - not syncing: Attempted to kill init!\n"
    assert console.feed(panic).show == panic.strip()
    assert console.feed("(XEN) Xen version 4.17\n") == Seen()  # x86: Xen's own lines
    assert console.feed("mirage-vm: exit status 2\n") == Seen(status=2)
    assert console.status == 2


@given(st.text(), st.integers(min_value=0, max_value=3) | st.none())
def test_console_filter_takes_any_text(line: str, domain: int | None) -> None:
    seen = ConsoleFilter(domain).feed(line.replace("\n", "") + "\n")
    assert seen.show is None or "\n" not in seen.show


def test_entry_point_registers_the_virtio_target_and_its_keys() -> None:
    (ep,) = [e for e in entry_points(group="mirage") if e.name == "vm"]
    assert ep.dist is not None and ep.dist.name == "mirage-vm"
    registry = load_registry(entrypoints=False, plugins=[("core", _builtin), ("vm", ep.load())])
    assert not registry.failures
    assert set(registry.targets) == {"virtio"}
    assert set(registry.keys) == {"net", "target"} | {k.name for k in _plugin.KEYS}
    assert {k.name for k in _plugin.KEYS} >= {"vm-net", "vm-forward", "vm-arch", "vm-disk"}
    assert not registry.impls


@given(st.binary(max_size=500))
def test_pvh_note_check_is_total(data: bytes) -> None:
    from mirage.vm._elf import has_pvh_entry

    assert has_pvh_entry(data) in (True, False)


def test_package_versions_come_from_one_apt_cache_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mirage.vm._debs import candidates

    fake = tmp_path / "apt-cache"
    fake.write_text(
        '#!/bin/sh\necho "$@" >> "$(dirname "$0")/calls"\n'
        "printf 'Package: libc6\\nVersion: 2.36-9\\n\\nPackage: zlib1g\\nVersion: 1:1.2\\n'\n"
        "printf 'Package: libc6\\nVersion: 2.35\\n'\nexit 100\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert candidates(["libc6", "zlib1g"], "arm64") == {"libc6": "2.36-9", "zlib1g": "1:1.2"}
    with pytest.raises(MirageError, match="apt knows no python9 for the architecture arm64"):
        candidates(["libc6", "python9"], "arm64")
    assert len((tmp_path / "calls").read_text().splitlines()) == 2


@pytest.mark.parametrize("net", ["user", "tap:tap0", "dgram:unix:/a,unix:/b"])
def test_libvirt_accepts_the_domain_description(tmp_path: Path, net: str) -> None:
    import shutil
    import subprocess

    from mirage.vm._target import _libvirt_xml

    (tmp_path / "web.vm.json").write_text(json.dumps(_notes("direct", net=net)))
    xml = _libvirt_xml(tmp_path, "web", ARCHES["x86_64"])
    assert ("<interface type='ethernet'>" in xml) == net.startswith("tap:")
    # The machine the kernel's arguments (acpi=noirq pci=nomsi) are for.
    assert "<type arch='x86_64' machine='pc'>hvm</type>" in xml
    assert "acpi=noirq pci=nomsi" in xml
    if shutil.which("virt-xml-validate") is None:
        pytest.skip("needs virt-xml-validate (apt-get install libvirt-clients)")
    (tmp_path / "web.xml").write_text(xml)
    checked = subprocess.run(
        ["virt-xml-validate", str(tmp_path / "web.xml"), "domain"], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_guest_that_does_not_finish_in_time_is_stopped(tmp_path: Path) -> None:
    import sys

    from mirage.vm._net import run_timeout
    from mirage.vm._target import stream_console

    options, argv = split_run_options(["--vm-timeout", "0.5", "--count", "1"])
    assert argv == ["--count", "1"]
    timeout = run_timeout(options)
    assert timeout == 0.5 and options == {}
    for bad in ("0", "soon", "-3", "nan"):
        with pytest.raises(MirageError, match="bad timeout"):
            run_timeout({"timeout": bad})
    machine = [sys.executable, "-c", "import time; print('booting', flush=True); time.sleep(60)"]
    with pytest.raises(MirageError, match=r"no exit status within 0\.5 s") as caught:
        stream_console(machine, tmp_path, timeout=timeout)
    assert "--vm-timeout" in str(caught.value.hint)


def test_a_slow_machines_timer_warning_is_not_shown() -> None:
    line = "[    0.020000] ..MP-BIOS bug: 8254 timer not connected to IO-APIC"
    assert ConsoleFilter().feed(line + "\n") == Seen()
    assert ConsoleFilter().feed("[    1.0] BUG: kernel NULL pointer\n").show is not None


@given(st.binary(max_size=300))
@example(b"\x7fELF\x02\x01" + bytes(58))
def test_section_stripping_is_total(data: bytes) -> None:
    from mirage.vm._elf import without_sections

    assert isinstance(without_sections(data), bytes)


def test_an_extension_without_its_sections_still_loads(tmp_path: Path) -> None:
    import importlib
    import subprocess
    import sys

    from mirage.vm._elf import without_sections

    for name in ("_decimal", "_ctypes", "_json", "_asyncio", "_sqlite3"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        path = getattr(module, "__file__", None)
        if path and path.endswith(".so"):
            break
    else:
        pytest.skip("this interpreter has no extension module in a shared library")
    data = Path(path).read_bytes()
    stripped = without_sections(data)
    assert len(stripped) <= len(data)
    assert needed_libraries(stripped) == needed_libraries(data)
    (tmp_path / Path(path).name).write_bytes(stripped)
    code = (
        "import importlib.machinery as m, importlib.util as u, sys\n"
        f"spec = u.spec_from_file_location({name!r}, {str(tmp_path / Path(path).name)!r})\n"
        "module = u.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "print(module.__file__)\n"
    )
    loaded = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert str(tmp_path) in loaded.stdout


def test_xz_initramfs_round_trips_with_the_check_linux_reads() -> None:
    import lzma

    from mirage.vm._compress import compress_initrd, xz_initramfs

    data = b"070701" + bytes(range(256)) * 64
    for arch in ARCHES.values():
        packed = xz_initramfs(data, arch)
        assert packed[:6] == b"\xfd7zXZ\x00" and packed[7] == 0x01  # CRC32
        assert lzma.decompress(packed) == data
    with pytest.raises(MirageError, match="no initramfs compression 'zip'"):
        compress_initrd(Path("unused"), "zip", ARCHES["x86_64"])


def test_kvm_is_used_only_where_it_can_boot_a_stock_kernel(tmp_path: Path) -> None:
    from mirage.vm._arch import ARCHES
    from mirage.vm._target import kvm_unusable

    x86, arm = ARCHES["x86_64"], ARCHES["aarch64"]
    with_vmx = tmp_path / "vmx"
    with_vmx.write_text("processor\t: 0\nflags\t\t: fpu sse2 vmx rdrand\n")
    without = tmp_path / "pvm"
    without.write_text("processor\t: 0\nflags\t\t: fpu sse2 rdrand hypervisor\n")
    missing = str(tmp_path / "no-kvm")
    assert "host is x86_64" in str(kvm_unusable(arm, host="x86_64"))
    assert "no-kvm" in str(kvm_unusable(x86, device=missing, host="x86_64"))
    # Not a KVM device: the API request fails.
    assert "answers no KVM request" in str(
        kvm_unusable(x86, device=str(with_vmx), cpuinfo=str(with_vmx), host="x86_64")
    )
    if kvm_unusable(x86, cpuinfo=str(with_vmx), host="x86_64") is None:
        # This host has a /dev/kvm: without VMX/SVM it is a paravirtual one.
        reason = kvm_unusable(x86, cpuinfo=str(without), host="x86_64")
        assert reason is not None and "no vmx or svm" in reason


def test_auto_acceleration_follows_the_probe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mirage.vm._target as target

    (tmp_path / "web.vm.json").write_text(json.dumps({**_notes("direct"), "accel": "auto"}))
    monkeypatch.setattr(target, "kvm_unusable", lambda arch: None)
    command = qemu_command(tmp_path, "web", [])
    assert command[1:5] == ["-accel", "kvm", "-cpu", "host"]
    monkeypatch.setattr(target, "kvm_unusable", lambda arch: "no vmx")
    command = qemu_command(tmp_path, "web", [])
    assert command[1:3] == ["-accel", "tcg"] and "host" not in command
    # Asked for by name, as asked.
    (tmp_path / "web.vm.json").write_text(json.dumps({**_notes("direct"), "accel": "kvm"}))
    assert qemu_command(tmp_path, "web", [])[1:3] == ["-accel", "kvm"]
