"""The pieces without a boot: dom0less tree, console filter, boards, U-Boot scripts."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mirage.arm import DeviceTree, pull_fdt, push_fdt, u64
from mirage.arm._boards import ARM_ARCHES, BOARDS, boot_script
from mirage.arm._console import ConsoleFilter, Seen, stream
from mirage.arm._dom0 import Dom0
from mirage.arm._dom0_init import vif_nodes
from mirage.arm._dom0less import (
    COMMAND_LINE_MAX,
    DOM0_KERNEL_ADDR,
    DOM0_RAMDISK_ADDR,
    KERNEL_ADDR,
    RAMDISK_ADDR,
    Guest,
    dom0less_tree,
    set_guest_bootargs,
)
from mirage.arm._target import _mmio_nic, xen_qemu_command
from mirage.arm._uboot import script_image
from mirage.core import MirageError


def virt_like(memory_mib: int = 2048) -> bytes:
    tree = DeviceTree()
    tree.root.set("#address-cells", 2)
    tree.root.set("#size-cells", 2)
    tree.root.set("compatible", "linux,dummy-virt")
    memory = tree.ensure("/memory@40000000")
    memory.set("device_type", "memory")
    memory.set("reg", u64(0x40000000, memory_mib << 20))
    tree.ensure("/pl011@9000000").set("compatible", ["arm,pl011", "arm,primecell"])
    tree.ensure("/chosen").set("stdout-path", "/pl011@9000000")
    return push_fdt(tree)


GUEST = Guest(
    kernel_size=32 << 20, ramdisk_size=13 << 20, memory_mib=256, bootargs="console=ttyAMA0"
)


def test_the_dom0less_tree_is_what_xen_reads() -> None:
    tree = pull_fdt(dom0less_tree(virt_like(), GUEST))
    chosen = tree.get("/chosen")
    assert chosen.u32("#address-cells") == 2 and chosen.u32("#size-cells") == 2
    assert chosen.string("xen,xen-bootargs") == (
        "console=dtuart dtuart=/pl011@9000000 guest_loglvl=all bootscrub=0"
    )
    domain = tree.get("/chosen/domU1")
    assert domain.strings("compatible") == ["xen,domain"]
    assert domain.cells("memory") == (0, 256 * 1024)
    assert domain.u32("cpus") == 1
    assert domain.props["vpl011"] == b""
    kernel = tree.get(f"/chosen/domU1/module@{KERNEL_ADDR:x}")
    assert kernel.strings("compatible") == ["multiboot,kernel", "multiboot,module"]
    assert kernel.cells("reg") == (0, KERNEL_ADDR, 0, 32 << 20)
    assert kernel.string("bootargs") == "console=ttyAMA0"
    ramdisk = tree.get(f"/chosen/domU1/module@{RAMDISK_ADDR:x}")
    assert ramdisk.strings("compatible") == ["multiboot,ramdisk", "multiboot,module"]
    assert ramdisk.cells("reg") == (0, RAMDISK_ADDR, 0, 13 << 20)
    # The rest of the machine's tree is untouched.
    assert tree.get("/pl011@9000000").strings("compatible") == ["arm,pl011", "arm,primecell"]


def test_runtime_arguments_replace_the_guest_command_line() -> None:
    blob = set_guest_bootargs(dom0less_tree(virt_like(), GUEST), "console=ttyAMA0 MIRAGE_ARGV=x")
    kernel = pull_fdt(blob).get(f"/chosen/domU1/module@{KERNEL_ADDR:x}")
    assert kernel.string("bootargs") == "console=ttyAMA0 MIRAGE_ARGV=x"


def test_bad_guests_are_refused_with_a_reason() -> None:
    with pytest.raises(MirageError, match="command line"):
        set_guest_bootargs(dom0less_tree(virt_like(), GUEST), "x" * (COMMAND_LINE_MAX + 1))
    with pytest.raises(MirageError, match=r"the kernel .* runs into"):
        dom0less_tree(virt_like(), Guest(200 << 20, 1, 256, ""))
    with pytest.raises(MirageError, match="runs past the machine's memory"):
        dom0less_tree(virt_like(memory_mib=256), GUEST)


def test_the_qemu_command_loads_the_modules_where_the_tree_says() -> None:
    command = xen_qemu_command("hello", "hello.dtb")
    assert command[0] == "qemu-system-aarch64"
    assert "virt,virtualization=on,gic-version=3" in command
    assert f"loader,file=hello.kernel,addr={KERNEL_ADDR:#x},force-raw=on" in command
    assert f"loader,file=hello.initrd,addr={RAMDISK_ADDR:#x},force-raw=on" in command
    assert command[command.index("-dtb") + 1] == "hello.dtb"


DOM0 = Dom0(
    kernel_size=32 << 20,
    ramdisk_size=30 << 20,
    kernel_addr=DOM0_KERNEL_ADDR,
    ramdisk_addr=DOM0_RAMDISK_ADDR,
)


def test_a_guest_with_a_network_gets_a_driver_domain_in_the_tree() -> None:
    tree = pull_fdt(dom0less_tree(virt_like(), GUEST, dom0=DOM0))
    chosen = tree.get("/chosen")
    assert chosen.string("xen,xen-bootargs").endswith(" dom0_mem=384M dom0_max_vcpus=1")
    # dom0's kernel and ramdisk are modules of /chosen itself, the guest's of domU1.
    kernel = tree.get(f"/chosen/module@{DOM0_KERNEL_ADDR:x}")
    assert kernel.strings("compatible") == ["multiboot,kernel", "multiboot,module"]
    assert kernel.cells("reg") == (0, DOM0_KERNEL_ADDR, 0, 32 << 20)
    assert kernel.string("bootargs") == "console=hvc0 quiet"
    ramdisk = tree.get(f"/chosen/module@{DOM0_RAMDISK_ADDR:x}")
    assert ramdisk.strings("compatible") == ["multiboot,ramdisk", "multiboot,module"]
    assert ramdisk.cells("reg") == (0, DOM0_RAMDISK_ADDR, 0, 30 << 20)
    domain = tree.get("/chosen/domU1")
    assert domain.string("xen,enhanced") == "enabled"
    assert tree.get(f"/chosen/domU1/module@{KERNEL_ADDR:x}").string("bootargs") == (
        "console=ttyAMA0"
    )
    # Without a network: no dom0, and the guest is not marked for xenstore.
    plain = pull_fdt(dom0less_tree(virt_like(), GUEST))
    assert "xen,enhanced" not in plain.get("/chosen/domU1").props
    assert [c.name for c in plain.get("/chosen").children] == ["domU1"]


def test_images_that_overlap_in_the_loaders_memory_are_refused() -> None:
    big = Guest(kernel_size=32 << 20, ramdisk_size=129 << 20, memory_mib=256, bootargs="")
    dom0less_tree(virt_like(), big)  # alone, the guest's ramdisk may be large
    with pytest.raises(MirageError, match=r"the guest's ramdisk .* runs into"):
        dom0less_tree(virt_like(), big, dom0=DOM0)
    with pytest.raises(MirageError, match=r"dom0's kernel .* runs into"):
        dom0less_tree(
            virt_like(), GUEST, dom0=Dom0(65 << 20, 1, DOM0_KERNEL_ADDR, DOM0_RAMDISK_ADDR)
        )


def test_a_run_that_appends_files_updates_the_guest_ramdisk_size() -> None:
    blob = set_guest_bootargs(dom0less_tree(virt_like(), GUEST, dom0=DOM0), "x", ramdisk_size=99)
    tree = pull_fdt(blob)
    assert tree.get(f"/chosen/domU1/module@{RAMDISK_ADDR:x}").cells("reg") == (
        0,
        RAMDISK_ADDR,
        0,
        99,
    )
    assert tree.get(f"/chosen/module@{DOM0_RAMDISK_ADDR:x}").cells("reg")[3] == 30 << 20


def test_the_qemu_command_with_a_driver_domain() -> None:
    nic = _mmio_nic(["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile="])
    assert nic == ["-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0"]
    command = xen_qemu_command(
        "web", "web.run.dtb", initrd="web.run.initrd", dom0=True, devices=nic
    )
    loaders = [command[i + 1] for i, arg in enumerate(command) if arg == "-device"]
    assert loaders == [
        f"loader,file=web.kernel,addr={KERNEL_ADDR:#x},force-raw=on",
        f"loader,file=web.run.initrd,addr={RAMDISK_ADDR:#x},force-raw=on",
        f"loader,file=web.kernel,addr={DOM0_KERNEL_ADDR:#x},force-raw=on",
        f"loader,file=web.dom0.initrd,addr={DOM0_RAMDISK_ADDR:#x},force-raw=on",
        "virtio-net-device,netdev=n0",
    ]


def test_the_vif_is_written_as_both_ends_in_one_transaction() -> None:
    words = vif_nodes(1, "00:16:3e:00:00:01")
    nodes = dict(zip(words[::2], words[1::2], strict=True))
    front, back = "/local/domain/1/device/vif/0", "/local/domain/0/backend/vif/1/0"
    assert nodes[f"{front}/backend"] == back and nodes[f"{back}/frontend"] == front
    assert nodes[f"{front}/backend-id"] == "0" and nodes[f"{back}/frontend-id"] == "1"
    assert nodes[f"{front}/mac"] == nodes[f"{back}/mac"] == "00:16:3e:00:00:01"
    assert nodes[f"{front}/state"] == nodes[f"{back}/state"] == "1"  # XenbusStateInitialising
    # Linux's netback reads the script's name and waits for its status.
    assert nodes[f"{back}/hotplug-status"] == "connected" and f"{back}/script" in nodes


def test_the_console_under_xen_shows_only_the_guest() -> None:
    console = ConsoleFilter(domain=1)
    assert console.feed("(XEN) Xen version 4.17.7\n") == Seen()
    assert console.feed("(XEN) DOM1: hello\r\n") == Seen("hello")
    assert console.feed("(XEN) DOM1: [    0.5] Run /init as init process\n") == Seen()
    assert console.feed("(XEN) DOM1: [    0.6] Kernel panic - not syncing\n").show is not None
    # A dom0less guest's xenstore has no cpu/ nodes: routine, not trouble.
    assert (
        console.feed("(XEN) DOM1: [    6.7] xen:cpu_hotplug: Unable to read cpu state\n") == Seen()
    )
    assert console.feed("(XEN) Panic on CPU 0:\n").show == "(XEN) Panic on CPU 0:"
    assert console.feed("(XEN) DOM1: \x1b[0mmirage-vm: exit status 3\n") == Seen(status=3)
    assert console.status == 3


def test_the_console_of_a_bare_machine() -> None:
    console = ConsoleFilter()
    assert console.feed("hi\n") == Seen("hi")
    assert console.feed("[    1.000000] reboot: Power down\n") == Seen()
    assert console.feed("mirage-vm: exit status x\n") == Seen("mirage-vm: exit status x")
    assert console.feed("mirage-vm: exit status 0\n") == Seen(status=0)


@settings(max_examples=100)
@given(st.text())
def test_the_console_filter_takes_any_text(line: str) -> None:
    seen = ConsoleFilter(domain=1).feed(line)
    assert seen.show is None or isinstance(seen.show, str)


def test_board_profiles() -> None:
    assert {b.name: (b.arch, b.load) for b in BOARDS.values()} == {
        "virt-aarch64": ("aarch64", "qemu"),
        "virt-armv7": ("armv7", "qemu"),
        "rpi4": ("aarch64", "u-boot"),
        "cubieboard2": ("armv7", "u-boot"),
    }
    assert ARM_ARCHES["armv7"].deb == "armhf" and ARM_ARCHES["aarch64"].deb == "arm64"
    assert [b.name for b in BOARDS.values() if b.boots_here] == ["virt-aarch64", "virt-armv7"]
    script = boot_script(BOARDS["rpi4"], "hello", "console=ttyS1,115200 quiet")
    assert 'setenv bootargs "console=ttyS1,115200 quiet"' in script
    assert "booti ${kernel_addr_r} ${ramdisk_addr_r}:${initrd_size} ${fdt_addr_r}" in script
    assert "bootz " in boot_script(BOARDS["cubieboard2"], "hello", "")
    with pytest.raises(ValueError, match="not loaded by U-Boot"):
        boot_script(BOARDS["virt-aarch64"], "hello", "")


def read_script_image(data: bytes) -> tuple[int, str, str]:
    """U-Boot's legacy header, read from its description: (arch, name, script)."""
    fields = struct.unpack(">7I4B32s", data[:64])
    assert fields[0] == 0x27051956
    header = bytearray(data[:64])
    header[4:8] = b"\0\0\0\0"
    assert zlib.crc32(header) == fields[1]
    body = data[64 : 64 + fields[3]]
    assert zlib.crc32(body) == fields[6]
    assert fields[9] == 6  # IH_TYPE_SCRIPT
    size, end = struct.unpack_from(">II", body)
    assert end == 0
    return fields[8], fields[11].rstrip(b"\0").decode(), body[8 : 8 + size].decode()


@pytest.mark.parametrize(("arch", "code"), [("aarch64", 22), ("armv7", 2)])
def test_the_boot_script_image(arch: str, code: int) -> None:
    text = "echo odd length\n"
    assert read_script_image(script_image(text, arch=arch, name="hello")) == (code, "hello", text)


@pytest.mark.skipif(
    shutil.which("mkimage") is None,
    reason="mkimage is not installed (apt-get install u-boot-tools)",
)
@pytest.mark.parametrize("text", ["booti 0 - 0\n", "echo x\n" * 7, "echo odd\n"])
def test_the_boot_script_image_is_mkimages(tmp_path: Path, text: str) -> None:
    source = tmp_path / "boot.cmd"
    source.write_text(text)
    options = ["-A", "arm64", "-O", "linux", "-T", "script", "-C", "none", "-n", "hello"]
    subprocess.run(
        ["mkimage", *options, "-d", str(source), str(tmp_path / "boot.scr")],
        check=True,
        capture_output=True,
        env={"SOURCE_DATE_EPOCH": "0", "PATH": "/usr/bin:/bin"},
    )
    assert script_image(text, arch="aarch64", name="hello") == (tmp_path / "boot.scr").read_bytes()


def fake_xen(tmp_path: Path, lines: list[str]) -> list[str]:
    """A stand-in for QEMU running Xen: prints ``lines``, then runs on, as Xen does."""
    script = tmp_path / "machine.py"
    script.write_text(
        f"import sys, time\nfor line in {lines!r}:\n    print(line, flush=True)\ntime.sleep(120)\n"
    )
    return [sys.executable, str(script)]


def test_the_driver_stops_the_machine_on_the_exit_marker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = fake_xen(
        tmp_path, ["(XEN) booting", "(XEN) DOM1: hello", "(XEN) DOM1: mirage-vm: exit status 4"]
    )
    assert stream(command, tmp_path, domain=1, timeout=60) == 4
    assert capsys.readouterr().out == "hello\n"


def test_the_driver_gives_up_at_its_deadline(tmp_path: Path) -> None:
    with pytest.raises(MirageError, match=r"no exit status within 0\.5 s"):
        stream(fake_xen(tmp_path, ["(XEN) DOM1: stuck"]), tmp_path, domain=1, timeout=0.5)


def test_a_machine_that_stops_without_a_status_is_a_failure(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "print('[    0.1] Kernel panic - not syncing')"]
    assert stream(command, tmp_path, timeout=60) == 1


EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.mark.parametrize(
    ("configure", "reason"),
    [
        (["-t", "arm", "--board", "rpi4"], "no network driver list"),
    ],
)
def test_a_network_configuration_is_refused_where_there_is_no_nic(
    tmp_path: Path, configure: list[str], reason: str
) -> None:
    project = tmp_path / "echo"
    shutil.copytree(EXAMPLES / "echo", project, ignore=shutil.ignore_patterns("mirage", "dist"))

    def mirage(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "mirage.core", "-C", str(project), *args]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    assert mirage("configure", *configure).returncode == 0
    built = mirage("build")
    assert built.returncode != 0
    assert reason in built.stderr


def test_host_files_named_by_path_arguments_go_into_the_guest(tmp_path: Path) -> None:
    from mirage.arm._target import arm_qemu_command

    (tmp_path / "web.initrd").write_bytes(b"070701" + bytes(104))  # stands for the image
    cert = tmp_path / "cert.pem"
    cert.write_bytes(b"CERT")
    info = {
        "network": False,
        "stack": None,
        "runtime_args": ["tls-cert"],
        "path_args": ["tls-cert"],
        "net": "user",
        "forward": "",
        "memory": 256,
    }
    board = BOARDS["virt-aarch64"]
    command = arm_qemu_command("web", board, info, ["--tls-cert", str(cert)], None, dist=tmp_path)
    assert command[command.index("-initrd") + 1] == "web.run.initrd"
    booted = (tmp_path / "web.run.initrd").read_bytes()
    assert booted.startswith((tmp_path / "web.initrd").read_bytes()) and b"CERT" in booted
    import base64
    import json

    append = command[command.index("-append") + 1]
    encoded = append.split("MIRAGE_ARGV=")[1].split()[0]
    assert json.loads(base64.b64decode(encoded)) == ["--tls-cert", "/run/mirage-files/0/cert.pem"]
    # Without the folder (the script written at build time) the image is booted as is.
    plain = arm_qemu_command("web", board, info, [], None)
    assert plain[plain.index("-initrd") + 1] == "web.initrd"
