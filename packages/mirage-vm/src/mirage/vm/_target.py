"""The ``virtio`` target: build a bootable image, run it under QEMU.

``build`` writes into ``dist/``: ``<name>.kernel`` (the distribution kernel, used only
as the driver layer), ``<name>.initrd`` (our initramfs), ``<name>.qemu.sh`` (a plain
QEMU command line) and ``<name>.libvirt.xml``. ``run`` boots it, streams the guest's
console, and returns the application's exit status, which ``/init`` prints before it
powers the machine off.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from mirage.core import MirageError
from mirage.core.build import ArtifactContext

from . import _debs
from ._arch import ARCHES, RUNTIME_PACKAGES, Arch
from ._image import build_initramfs, find_kernel

__all__ = ["build", "qemu_command", "run", "stream_console"]

MARKER = "mirage-vm: exit status"
GUEST_IPV4 = "10.0.2.15/24"  # QEMU's user-mode network
GUEST_GATEWAY = "10.0.2.2"


def _keys(ctx: ArtifactContext) -> dict[str, Any]:
    return dict(ctx.plan.keys)


def _arch(keys: dict[str, Any]) -> Arch:
    name = keys.get("vm-arch") or "x86_64"
    arch = ARCHES.get(name)
    if arch is None:
        raise MirageError(
            f"no runtime is known for the architecture {name!r}",
            where="--vm-arch",
            hint=f"choose one of: {', '.join(ARCHES)}",
        )
    return arch


def _needs_network(ctx: ArtifactContext) -> bool:
    return any(d.module_type in ("stack", "network") for d in ctx.plan.devices)


def build(ctx: ArtifactContext) -> list[Path]:
    keys = _keys(ctx)
    arch = _arch(keys)
    log: list[str] = []
    packages = list(RUNTIME_PACKAGES)
    kernel_key = keys.get("vm-kernel")
    if not kernel_key:
        packages.append(_debs.kernel_package(arch.kernel_flavour, arch.deb))
    runtime_key = keys.get("vm-runtime")
    root = Path(runtime_key) if runtime_key else _debs.unpack(_debs.fetch(packages, arch.deb, log))
    for line in log:
        print(line, file=sys.stderr)
    if kernel_key:
        kernel = Path(kernel_key)
        if not kernel.is_file():
            raise MirageError(f"no kernel at {kernel}", where="--vm-kernel")
        version = keys.get("vm-kernel-version") or ""
    else:
        kernel, version = find_kernel(root)
    network = _needs_network(ctx)
    name = ctx.plan.name
    ctx.dist_dir.mkdir(parents=True, exist_ok=True)
    image = build_initramfs(
        ctx, arch, root, version, network=network, out=ctx.dist_dir / f"{name}.initrd"
    )
    kernel_out = ctx.dist_dir / f"{name}.kernel"
    shutil.copyfile(kernel, kernel_out)
    (ctx.dist_dir / f"{name}.vm.json").write_text(
        json.dumps(
            {
                "arch": arch.name,
                "network": network,
                "memory": int(keys.get("vm-memory") or 256),
                "forward": keys.get("vm-forward") or "",
                "accel": keys.get("vm-accel") or "tcg",
                "stdlib_modules": image.stdlib_modules,
                "app_modules": image.app_modules,
                "kernel_modules": image.kernel_modules,
            },
            indent=1,
        )
    )
    argv = qemu_command(ctx.dist_dir, name, [])
    script = ctx.dist_dir / f"{name}.qemu.sh"
    script.write_text(
        "#!/bin/sh\n# Boot the unikernel; runtime arguments go in MIRAGE_ARGV (see mirage run).\n"
        f'cd "$(dirname "$0")" && exec {shlex.join(argv)}\n'
    )
    script.chmod(0o755)
    (ctx.dist_dir / f"{name}.libvirt.xml").write_text(_libvirt_xml(ctx.dist_dir, name, arch))
    if image.left_out:
        print(
            "note: left out of the image (the runtime lacks their libraries):"
            f" {', '.join(image.left_out)}",
            file=sys.stderr,
        )
    print(
        f"image: kernel {kernel_out.stat().st_size / 2**20:.1f} MiB, initrd"
        f" {image.size / 2**20:.1f} MiB ({image.stdlib_modules} stdlib modules,"
        f" {image.app_modules} application modules, kernel modules:"
        f" {', '.join(image.kernel_modules) or 'none'})",
        file=sys.stderr,
    )
    return [kernel_out, image.initrd, script]


def _append(arch: Arch, argv: list[str], network: bool) -> str:
    parts = [f"console={arch.console}", "quiet", "panic=-1"]
    if network:
        parts += [f"MIRAGE_IPV4={GUEST_IPV4}", f"MIRAGE_GATEWAY={GUEST_GATEWAY}"]
    if argv:
        encoded = base64.urlsafe_b64encode(json.dumps(argv).encode()).decode()
        parts.append(f"MIRAGE_ARGV={encoded}")
    return " ".join(parts)


def qemu_command(dist: Path, name: str, argv: list[str]) -> list[str]:
    info = json.loads((dist / f"{name}.vm.json").read_text())
    arch = ARCHES[info["arch"]]
    command = [
        arch.qemu,
        "-accel",
        info["accel"],
        *arch.qemu_args,
        "-m",
        str(info["memory"]),
        "-nographic",
        "-nodefaults",
        "-no-reboot",
        "-serial",
        "stdio",
        "-kernel",
        f"{name}.kernel",
        "-initrd",
        f"{name}.initrd",
        "-append",
        _append(arch, argv, info["network"]),
    ]
    if info["network"]:
        forwards = "".join(
            f",hostfwd=tcp:127.0.0.1:{host}-:{guest}"
            for host, _, guest in (f.partition(":") for f in info["forward"].split(",") if f)
        )
        command += [
            "-netdev",
            f"user,id=n0{forwards}",
            "-device",
            "virtio-net-pci,netdev=n0,romfile=",
        ]
    return command


def _libvirt_xml(dist: Path, name: str, arch: Arch) -> str:
    info = json.loads((dist / f"{name}.vm.json").read_text())
    interface = (
        "    <interface type='user'><model type='virtio'/></interface>\n" if info["network"] else ""
    )
    return (
        f"<domain type='qemu'>\n  <name>{name}</name>\n"
        f"  <memory unit='MiB'>{info['memory']}</memory>\n  <vcpu>1</vcpu>\n"
        f"  <os>\n    <type arch='{arch.name}'>hvm</type>\n"
        f"    <kernel>{(dist / f'{name}.kernel').resolve()}</kernel>\n"
        f"    <initrd>{(dist / f'{name}.initrd').resolve()}</initrd>\n"
        f"    <cmdline>{_append(arch, [], info['network'])}</cmdline>\n  </os>\n"
        "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>destroy</on_reboot>\n"
        f"  <devices>\n    <serial type='pty'><target port='0'/></serial>\n"
        f"    <console type='pty'><target type='serial' port='0'/></console>\n{interface}"
        "  </devices>\n</domain>\n"
    )


_ESCAPE = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|c)")
_KERNEL_LINE = re.compile(r"^\[\s*\d+\.\d+\] ")
# Firmware banners, and the lines a Xen PV kernel prints before its console: dropped
# (as a prefix: the application's first line may follow "Booting from ROM.." at once).
_FIRMWARE = re.compile(
    r"^(SeaBIOS \(version[^)]*\)|Booting from ROM\.*|iPXE[^\n]*"
    r"|mapping kernel into physical memory|about to get started\.\.\.)"
)
_XEN_LINE = "(XEN) "


def _clean(line: str) -> str:
    return _ESCAPE.sub("", line)


def _noise(line: str) -> bool:
    """Firmware banners and routine kernel lines (kept: anything about a panic or an
    oops, which says why a guest died)."""
    if _FIRMWARE.match(line):
        return True
    lowered = line.lower()
    if line.startswith(_XEN_LINE):
        return not any(w in lowered for w in ("panic", "crash", "fatal"))
    if _KERNEL_LINE.match(line):
        return not any(w in lowered for w in ("panic", "oops", "bug:", "error", "failed"))
    return False


def run(ctx: ArtifactContext, argv: list[str]) -> int:
    """Boot the image, stream its console, return the application's exit status."""
    name = ctx.plan.name
    if not (ctx.dist_dir / f"{name}.vm.json").exists():
        raise MirageError(
            f"{ctx.dist_dir / name}.initrd does not exist", hint="run 'mirage build' first"
        )
    return stream_console(qemu_command(ctx.dist_dir, name, argv), ctx.dist_dir)


def stream_console(command: list[str], cwd: Path) -> int:
    """Run QEMU, show the guest console without firmware and routine kernel (or Xen)
    lines, and return the exit status ``/init`` reported."""
    if shutil.which(command[0]) is None:
        raise MirageError(
            f"{command[0]} is not installed", hint="apt-get install qemu-system-x86 (or -arm)"
        )
    child = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    assert child.stdout is not None
    status: int | None = None
    stopped: list[int] = []

    def stop(signum: int, frame: object) -> None:
        stopped.append(signum)
        child.terminate()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for raw in child.stdout:
            text = raw.decode("utf-8", "replace").replace("\r", "")
            line = _clean(text)
            if line.startswith(MARKER):
                status = int(line.split()[-1])
                continue
            line = _FIRMWARE.sub("", line)
            if line != text and not line.strip():
                continue  # only terminal control sequences or a firmware banner
            if not _noise(line):
                sys.stdout.write(line)
                sys.stdout.flush()
        child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if status is None:
        if stopped:
            print(
                f"mirage: stopped the guest on {signal.Signals(stopped[0]).name}",
                file=sys.stderr,
            )
            return 0
        print(
            f"mirage: the guest stopped without an exit status (QEMU: {child.returncode});"
            " the console above says why",
            file=sys.stderr,
        )
        return 1
    return status
