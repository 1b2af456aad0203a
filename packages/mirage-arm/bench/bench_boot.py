"""bench-arm (boot): the ARM64 targets' image sizes and boot times beside the bare kernel.

For examples/hello and examples/static-website, under QEMU (software emulation):

- ``arm --board virt-aarch64``: the image (initramfs) raw and gzip-compressed, the
  time to hello's first line and to the website's first HTTP answer, beside the same
  Debian arm64 kernel reaching PID 1 (an initramfs whose /init prints a line and
  powers off: a static aarch64 program of a few instructions, assembled here, since
  this x86_64 machine has no aarch64 compiler);
- ``xen-arm64``: the same, on Debian's Xen with the image as its dom0less guest,
  beside Xen booting that bare /init as its guest. The website's guest gets its
  network from the driver domain (dom0) booted beside it, which the bare guest and
  hello do without.

Rounds interleave the images (other work on the machine slows them alike); medians
and bests are printed. The goal is the issue's: the first answer within 1.5x of the
bare kernel reaching PID 1.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
RUNS = 3
MARKER = "bare: pid 1"


def bare_init_aarch64() -> bytes:
    """A static aarch64 ELF: write(1, MARKER), sync(), reboot(POWER_OFF), spin."""

    def movz(reg: int, imm: int, shift: int = 0, wide: bool = True) -> int:
        return (0xD2800000 if wide else 0x52800000) | (shift // 16) << 21 | imm << 5 | reg

    def movk(reg: int, imm: int, shift: int) -> int:
        return 0x72800000 | (shift // 16) << 21 | imm << 5 | reg  # 32-bit register

    svc, spin = 0xD4000001, 0x14000000
    message = (MARKER + "\n").encode()
    code = [
        movz(0, 1),  # fd 1: the kernel opened /dev/console for init
        0,  # adr x1, message (patched below)
        movz(2, len(message)),
        movz(8, 64),  # write
        svc,
        movz(8, 81),  # sync
        svc,
        movz(0, 0xDEAD, wide=False),
        movk(0, 0xFEE1, 16),  # LINUX_REBOOT_MAGIC1
        movz(1, 0x1969, wide=False),
        movk(1, 0x2812, 16),  # LINUX_REBOOT_MAGIC2
        movz(2, 0xFEDC, wide=False),
        movk(2, 0x4321, 16),  # LINUX_REBOOT_CMD_POWER_OFF
        movz(3, 0),
        movz(8, 142),  # reboot
        svc,
        spin,
    ]
    offset = (len(code) - 1) * 4  # from the adr (index 1) to the message after the code
    code[1] = 0x10000000 | (offset & 3) << 29 | (offset >> 2) << 5 | 1
    text = b"".join(struct.pack("<I", word) for word in code) + message
    base, header = 0x400000, 64 + 56
    elf = struct.pack(
        "<4sBBBBB7xHHIQQQIHHHHHH",
        b"\x7fELF", 2, 1, 1, 0, 0,  # 64-bit, little-endian, SysV
        2, 183, 1,  # executable, AArch64, version
        base + header, 64, 0,  # entry, program headers, no sections
        0, 64, 56, 1, 64, 0, 0,
    )  # fmt: skip
    program = struct.pack(
        "<IIQQQQQQ", 1, 5, 0, base, base, header + len(text), header + len(text), 0x10000
    )  # PT_LOAD, R+X
    return elf + program + text


def bare_initrd(out: Path) -> None:
    from mirage.vm.images import CpioWriter

    buf = io.BytesIO()
    cpio = CpioWriter(buf)
    cpio.directory("dev")
    cpio.char_device("dev/console", 5, 1)
    cpio.file("init", bare_init_aarch64(), 0o755)
    cpio.close()
    out.write_bytes(buf.getvalue())


def mirage(project: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "mirage.core", "-C", str(project), *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def example(work: Path, name: str, folder: str, *configure: str) -> Path:
    project = work / folder
    shutil.copytree(
        ROOT / "examples" / name, project, ignore=shutil.ignore_patterns("mirage", "dist")
    )
    mirage(project, "configure", *configure)
    mirage(project, "build")
    return project / "dist"


def timed(command: list[str], cwd: Path, marker: str, port: int | None = None) -> float:
    """Seconds from QEMU's start to the first console line holding ``marker`` (or,
    with ``port``, to the first HTTP answer asked for once that line is seen)."""
    start = time.perf_counter()
    child = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    assert child.stdout is not None
    try:
        for raw in child.stdout:
            if marker.encode() in raw:
                break
        else:
            return float("nan")
        if port is None:
            return time.perf_counter() - start
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60) as answer:
            answer.read()
            return time.perf_counter() - start if answer.status == 200 else float("nan")
    finally:
        child.kill()
        child.wait()


def virt_command(dist: Path, name: str, argv: list[str], options: dict[str, str]) -> list[str]:
    from mirage.arm._boards import BOARDS
    from mirage.arm._target import arm_qemu_command

    info = json.loads((dist / f"{name}.arm.json").read_text())
    return arm_qemu_command(name, BOARDS["virt-aarch64"], info, argv, options, dist=dist)


def xen_command(dist: Path, name: str, argv: list[str], options: dict[str, str]) -> list[str]:
    """What ``mirage run`` starts for a xen-arm64 image (its run tree written)."""
    from mirage.arm._dom0less import set_guest_bootargs
    from mirage.arm._target import _mmio_nic, xen_qemu_command
    from mirage.vm.images import guest_boot, kernel_command_line

    info = json.loads((dist / f"{name}.xen-arm64.json").read_text())
    net, words, guest_argv = guest_boot(info, argv, options)
    blob = set_guest_bootargs(
        (dist / f"{name}.dtb").read_bytes(),
        kernel_command_line("ttyAMA0", words, guest_argv),
        ramdisk_size=(dist / f"{name}.initrd").stat().st_size,
    )
    (dist / f"{name}.run.dtb").write_bytes(blob)
    return xen_qemu_command(
        name, f"{name}.run.dtb", dom0=bool(info.get("dom0")), devices=_mmio_nic(net)
    )


def main() -> int:
    if shutil.which("qemu-system-aarch64") is None:
        print("bench-arm (boot) needs qemu-system-aarch64")
        return 1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    forward = {"forward": f"{port}:8080"}
    hello_args = ["--count", "1", "--delay-ms", "0"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        virt_hello = example(work, "hello", "vh", "-t", "arm", "--board", "virt-aarch64")
        virt_site = example(work, "static-website", "vs", "-t", "arm", "--board", "virt-aarch64")
        xen_hello = example(work, "hello", "xh", "-t", "xen-arm64")
        xen_site = example(work, "static-website", "xs", "-t", "xen-arm64")
        for dist in (virt_hello, xen_hello):
            bare_initrd(dist / "bare.initrd")
        # The bare kernel: hello's command with the bare initramfs (and its size in the
        # xen tree, which the loader's module must match).
        virt_bare = [
            "bare.initrd" if arg == "hello.initrd" else arg
            for arg in virt_command(virt_hello, "hello", [], {})
        ]
        xen_bare_dtb = xen_hello / "bare.dtb"
        from mirage.arm._dom0less import set_guest_bootargs

        xen_bare_dtb.write_bytes(
            set_guest_bootargs(
                (xen_hello / "hello.dtb").read_bytes(),
                "console=ttyAMA0 quiet panic=-1",
                ramdisk_size=(xen_hello / "bare.initrd").stat().st_size,
            )
        )
        xen_bare = [
            "bare.dtb" if arg == "hello.run.dtb" else arg
            for arg in xen_command(xen_hello, "hello", [], {})
        ]
        xen_bare = [arg.replace("file=hello.initrd", "file=bare.initrd") for arg in xen_bare]
        cells = {
            "virt: bare kernel reaching PID 1": (virt_bare, virt_hello, MARKER, None),
            "virt: hello's first line": (
                virt_command(virt_hello, "hello", hello_args, {}),
                virt_hello,
                "Hello World!",
                None,
            ),
            "virt: website's first HTTP answer": (
                virt_command(virt_site, "www", [], dict(forward)),
                virt_site,
                "serving on http",
                port,
            ),
            "xen-arm64: bare kernel reaching PID 1": (xen_bare, xen_hello, MARKER, None),
            "xen-arm64: hello's first line": (
                xen_command(xen_hello, "hello", hello_args, {}),
                xen_hello,
                "Hello World!",
                None,
            ),
            "xen-arm64: website's first HTTP answer": (
                xen_command(xen_site, "www", [], dict(forward)),
                xen_site,
                "serving on http",
                port,
            ),
        }
        runs: dict[str, list[float]] = {label: [] for label in cells}
        for _ in range(RUNS):
            for label, (command, cwd, marker, answer_port) in cells.items():
                runs[label].append(timed(command, cwd, marker, answer_port))
        mib = 2**20
        for label, dist, name in (
            ("virt hello", virt_hello, "hello"),
            ("virt static-website (+ TLS)", virt_site, "www"),
            ("xen-arm64 hello", xen_hello, "hello"),
            ("xen-arm64 static-website", xen_site, "www"),
            ("xen-arm64 driver domain (dom0)", xen_site, "www.dom0"),
        ):
            data = (dist / f"{name}.initrd").read_bytes()
            packed = len(gzip.compress(data, 6))
            print(f"{label:<32} {len(data) / mib:6.1f} MiB raw  {packed / mib:5.1f} MiB gzip")
    print(f"{'boot, ' + str(RUNS) + ' runs':<40} {'median':>8} {'best':>8}")
    for label, values in runs.items():
        print(f"{label:<40} {statistics.median(values):7.2f}s {min(values):7.2f}s")
    for target in ("virt", "xen-arm64"):
        bare = statistics.median(runs[f"{target}: bare kernel reaching PID 1"])
        for what in ("hello's first line", "website's first HTTP answer"):
            ratio = statistics.median(runs[f"{target}: {what}"]) / bare
            verdict = "ok" if ratio <= 1.5 else "OVER"
            print(f"{target}: {what} / bare PID 1: {ratio:.2f} (goal <= 1.5): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
