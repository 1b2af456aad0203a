"""The ``virtio`` target: build a bootable image, run it under QEMU.

``build`` writes into ``dist/``: ``<name>.kernel`` (the distribution kernel, used only
as the driver layer), ``<name>.initrd`` (our initramfs), ``<name>.qemu.sh`` (a plain
QEMU command line) and ``<name>.libvirt.xml``. ``run`` boots it, streams the guest's
console, and returns the application's exit status, which ``/init`` prints before it
powers the machine off.
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import platform
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mirage.core import MirageError
from mirage.core.build import ArtifactContext

from . import _debs
from ._arch import ARCHES, RUNTIME_PACKAGES, Arch
from ._console import stream
from ._cpio import CpioWriter
from ._image import build_initramfs, find_kernel
from ._net import (
    guest_network,
    parse_netdev,
    qemu_netdev_args,
    run_timeout,
    split_run_options,
    stack_kind,
)

__all__ = ["build", "kvm_unusable", "qemu_command", "resolve_accel", "run", "stream_console"]

KVM_GET_API_VERSION = 0xAE00  # _IO(KVMIO, 0x00)
KVM_API_VERSION = 12


def kvm_unusable(
    arch: Arch,
    *,
    device: str = "/dev/kvm",
    cpuinfo: str = "/proc/cpuinfo",
    host: str | None = None,
) -> str | None:
    """Why KVM cannot run a stock kernel of ``arch`` on this host, or None if it can:
    the host is of the guest's architecture, ``device`` answers the KVM API, and (on
    x86) the CPU offers hardware virtualization. A ``/dev/kvm`` without VMX or SVM is
    a paravirtual KVM (PVM, in nested clouds) that boots only kernels built for it."""
    host = host or platform.machine()
    if host != arch.name:
        return f"the host is {host}, the guest {arch.name}"
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return f"{device}: {exc.strerror}"
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    except OSError as exc:
        return f"{device} answers no KVM request ({exc.strerror})"
    finally:
        os.close(fd)
    if version != KVM_API_VERSION:
        return f"{device} speaks KVM API {version}, not {KVM_API_VERSION}"
    if arch.name == "x86_64":
        try:
            with open(cpuinfo) as f:
                flags = {
                    flag
                    for line in f
                    if line.startswith("flags")
                    for flag in line.partition(":")[2].split()
                }
        except OSError as exc:
            return f"{cpuinfo}: {exc.strerror}"
        if not flags & {"vmx", "svm"}:
            return (
                "the CPU offers no hardware virtualization (no vmx or svm flag): this"
                f" {device} runs only guests built for a paravirtual KVM"
            )
    return None


def resolve_accel(requested: str, arch: Arch) -> str:
    """``auto`` (the default): KVM where :func:`kvm_unusable` finds it works, else
    software emulation (TCG); ``kvm`` and ``tcg`` as asked."""
    if requested != "auto":
        return requested
    return "kvm" if kvm_unusable(arch) is None else "tcg"


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
    return stack_kind(ctx.plan) is not None


DISK_MODULES = ("virtio_blk", "virtio_pci")
"""Kernel modules for the guest's disk under QEMU (other targets add their own)."""


def disk_notes(ctx: ArtifactContext) -> dict[str, Any]:
    """Whether the image gets a disk (``block``: the application has a block device,
    or ``--vm-disk`` names an image) and the default image (absolute, or "")."""
    keys = _keys(ctx)
    disk = keys.get("vm-disk") or ""
    if disk:
        path = Path(disk)
        if not path.is_absolute():
            path = ctx.dist_dir.parent / path
        disk = str(path.resolve())
    block = bool(disk) or any(d.module_type == "block" for d in ctx.plan.devices)
    return {"block": block, "disk": disk}


def disk_args(info: dict[str, Any], options: dict[str, str]) -> list[str]:
    """QEMU's arguments for the guest's disk: ``--vm-disk`` of the run (taken out of
    ``options``), else the image's default; a virtio disk, raw format."""
    disk = options.pop("disk", None) or info.get("disk") or ""
    if not disk:
        return []
    if not info.get("block"):
        raise MirageError(
            "this image has no disk driver",
            where="--vm-disk",
            hint="configure with --vm-disk IMAGE (or give the application a block device)",
        )
    path = Path(disk).resolve()
    if not path.is_file():
        raise MirageError(f"no disk image at {path}", where="--vm-disk")
    if "," in str(path):
        raise MirageError(f"QEMU cannot take a disk path with a comma: {path}", where="--vm-disk")
    return [
        "-drive",
        f"file={path},format=raw,if=none,id=disk0",
        "-device",
        "virtio-blk-pci,drive=disk0",
    ]


def network_notes(ctx: ArtifactContext) -> dict[str, Any]:
    """What :func:`guest_boot` needs to know of a build (kept in the image's notes):
    whether there is a NIC, whose stack uses it, the default host side."""
    keys = _keys(ctx)
    kind = stack_kind(ctx.plan)
    netdev = parse_netdev(keys.get("vm-net"), keys.get("vm-forward"))  # checked now
    return {
        "network": kind is not None,
        "stack": kind,
        "runtime_args": sorted(a.name for a in ctx.plan.runtime_args()),
        "path_args": sorted(a.name for a in ctx.plan.runtime_args() if a.type == "path"),
        "net": netdev.spec,
        "forward": keys.get("vm-forward") or "",
    }


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
    notes = {**network_notes(ctx), **disk_notes(ctx)}
    kind, network = notes["stack"], notes["network"]
    name = ctx.plan.name
    ctx.dist_dir.mkdir(parents=True, exist_ok=True)
    image = build_initramfs(
        ctx,
        arch,
        root,
        version,
        network=network,
        out=ctx.dist_dir / f"{name}.initrd",
        own_stack=kind == "direct",
        kernel_modules=DISK_MODULES if notes["block"] else (),
        disk=notes["block"],
    )
    kernel_out = ctx.dist_dir / f"{name}.kernel"
    shutil.copyfile(kernel, kernel_out)
    (ctx.dist_dir / f"{name}.vm.json").write_text(
        json.dumps(
            {
                "arch": arch.name,
                **notes,
                "memory": int(keys.get("vm-memory") or 256),
                "accel": keys.get("vm-accel") or "auto",
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
        "# The accelerator is the one chosen on the machine that built it (mirage run\n"
        "# chooses again where it runs).\n"
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


def kernel_command_line(console: str, words: list[str], argv: list[str]) -> str:
    """The guest kernel's command line: console, quiet, ``words`` (``NAME=VALUE`` that
    the kernel hands ``/init`` as environment), the application's arguments."""
    parts = [f"console={console}", "quiet", "panic=-1", *words]
    if argv:
        encoded = base64.urlsafe_b64encode(json.dumps(argv).encode()).decode()
        parts.append(f"MIRAGE_ARGV={encoded}")
    line = " ".join(parts)
    if len(line) > COMMAND_LINE_MAX:
        raise MirageError(
            f"the guest's kernel command line would be {len(line)} bytes, over the"
            f" {COMMAND_LINE_MAX} the kernel takes",
            where="runtime arguments",
            hint="pass fewer or shorter runtime arguments (or put the data in the image)",
        )
    return line


COMMAND_LINE_MAX = 2047  # x86_64 and arm64: COMMAND_LINE_SIZE 2048 with the NUL


def guest_boot(
    info: dict[str, Any], argv: list[str], options: dict[str, str] | None = None
) -> tuple[list[str], list[str], list[str]]:
    """For a built image's notes (``<name>.vm.json``), the run's options and the
    application's arguments: QEMU's network arguments, the kernel command line's
    network words, and the application's arguments as the guest gets them."""
    options = options or {}
    if not info.get("network"):
        if options:
            raise MirageError(
                "this image has no network device", where=", ".join(f"--vm-{k}" for k in options)
            )
        return [], [], argv
    spec = options.get("net", info.get("net"))
    forward = options.get("forward", info.get("forward") if "net" not in options else None)
    netdev = parse_netdev(spec, forward)
    words, guest_argv = guest_network(
        info.get("runtime_args", []), info.get("stack", "kernel"), netdev, argv
    )
    return qemu_netdev_args(netdev), words, guest_argv


HOST_FILES = "run/mirage-files"
"""Where host files named by path arguments appear in the guest."""


def host_files(
    info: dict[str, Any], argv: list[str], initrd: Path, out: Path
) -> tuple[list[str], Path]:
    """Host files that the application's path arguments (``--tls-cert cert.pem``) name
    go into the guest: ``initrd`` with a second cpio archive appended (the kernel
    unpacks each in turn) holding them under ``/run/mirage-files``, written to ``out``.
    Returns the arguments naming the guest's copies, and the initrd to boot (``initrd``
    itself when no argument names a host file)."""
    names = set(info.get("path_args", ()))
    files: list[tuple[str, bytes]] = []
    result: list[str] = []
    pending: str | None = None

    def guest_copy(value: str) -> str:
        path = Path(value)
        if not path.is_file():
            return value  # a path inside the guest already, or the application says
        guest = f"/{HOST_FILES}/{len(files)}/{path.name}"
        files.append((guest.lstrip("/"), path.read_bytes()))
        return guest

    for arg in argv:
        if pending is not None:
            result.append(guest_copy(arg))
            pending = None
            continue
        option, eq, value = arg.partition("=")
        if option.startswith("--") and option[2:] in names:
            if eq:
                result.append(f"{option}={guest_copy(value)}")
            else:
                result.append(arg)
                pending = option
            continue
        result.append(arg)
    if not files:
        return result, initrd
    buf = io.BytesIO()
    cpio = CpioWriter(buf)
    made: set[str] = set()
    for guest, data in files:
        parts = guest.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folder = "/".join(parts[:i])
            if folder not in made:
                made.add(folder)
                cpio.directory(folder)
        cpio.file(guest, data, 0o600)
    cpio.close()
    with out.open("wb") as sink:
        sink.write(initrd.read_bytes())
        sink.write(buf.getvalue())
    return result, out


def qemu_command(
    dist: Path, name: str, argv: list[str], options: dict[str, str] | None = None
) -> list[str]:
    info = json.loads((dist / f"{name}.vm.json").read_text())
    options = dict(options or {})
    disk = disk_args(info, options)
    initrd = Path(f"{name}.initrd")
    if info.get("path_args"):
        argv, initrd = host_files(info, argv, dist / initrd, dist / f"{name}.run.initrd")
        initrd = Path(initrd.name)
    arch = ARCHES[info["arch"]]
    net_args, words, guest_argv = guest_boot(info, argv, options)
    accel = resolve_accel(info["accel"], arch)
    kvm_host = accel == "kvm" and arch.name == "x86_64"
    return direct_boot(
        arch.qemu,
        accel=accel,
        machine=("-cpu", "host") if kvm_host else arch.qemu_args,
        memory_mib=info["memory"],
        kernel=f"{name}.kernel",
        initrd=str(initrd),
        append=kernel_command_line(arch.console, [*arch.kernel_args, *words], guest_argv),
        devices=[*net_args, *disk],
    )


def direct_boot(
    qemu: str,
    *,
    accel: str,
    machine: Sequence[str],
    memory_mib: int,
    kernel: str,
    initrd: str,
    append: str,
    devices: Sequence[str] = (),
) -> list[str]:
    """QEMU booting ``kernel`` and ``initrd`` directly, the console on standard I/O,
    no default devices, stopping instead of rebooting; ``devices`` are appended."""
    return [
        qemu,
        "-accel",
        accel,
        *machine,
        "-m",
        str(memory_mib),
        "-nographic",
        "-nodefaults",
        "-no-reboot",
        "-serial",
        "stdio",
        "-kernel",
        kernel,
        "-initrd",
        initrd,
        "-append",
        append,
        *devices,
    ]


# The machine the kernel's arguments are for (Arch.kernel_args): libvirt may default
# to another.
_LIBVIRT_MACHINE = {"x86_64": " machine='pc'"}


def _libvirt_xml(dist: Path, name: str, arch: Arch) -> str:
    info = json.loads((dist / f"{name}.vm.json").read_text())
    _, words, argv = guest_boot(info, [])
    cmdline = kernel_command_line(arch.console, [*arch.kernel_args, *words], argv)
    interface = _libvirt_interface(info.get("net", "user")) if info["network"] else ""
    if info.get("disk"):
        interface += (
            "    <disk type='file' device='disk'><driver name='qemu' type='raw'/>"
            f"<source file='{_xml_escape(info['disk'])}'/><target dev='vda' bus='virtio'/>"
            "</disk>\n"
        )
    kind = "kvm" if resolve_accel(info["accel"], arch) == "kvm" else "qemu"
    return (
        f"<domain type='{kind}'>\n  <name>{name}</name>\n"
        f"  <memory unit='MiB'>{info['memory']}</memory>\n  <vcpu>1</vcpu>\n"
        f"  <os>\n    <type arch='{arch.name}'{_LIBVIRT_MACHINE.get(arch.name, '')}>hvm</type>\n"
        f"    <kernel>{(dist / f'{name}.kernel').resolve()}</kernel>\n"
        f"    <initrd>{(dist / f'{name}.initrd').resolve()}</initrd>\n"
        f"    <cmdline>{_xml_escape(cmdline)}</cmdline>\n  </os>\n"
        "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>destroy</on_reboot>\n"
        f"  <devices>\n    <serial type='pty'><target port='0'/></serial>\n"
        f"    <console type='pty'><target type='serial' port='0'/></console>\n{interface}"
        "  </devices>\n</domain>\n"
    )


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("'", "&apos;")


def _libvirt_interface(spec: str) -> str:
    netdev = parse_netdev(spec)
    if netdev.kind == "tap":
        return (
            "    <interface type='ethernet'>"
            f"<target dev='{_xml_escape(netdev.tap)}' managed='no'/>"
            "<model type='virtio'/></interface>\n"
        )
    # libvirt has no dgram interface; user-mode networking stands in for it there.
    return "    <interface type='user'><model type='virtio'/></interface>\n"


def run(ctx: ArtifactContext, argv: list[str]) -> int:
    """Boot the image, stream its console, return the application's exit status."""
    name = ctx.plan.name
    if not (ctx.dist_dir / f"{name}.vm.json").exists():
        raise MirageError(
            f"{ctx.dist_dir / name}.initrd does not exist", hint="run 'mirage build' first"
        )
    options, guest_argv = split_run_options(argv)
    timeout = run_timeout(options)
    command = qemu_command(ctx.dist_dir, name, guest_argv, options)
    return stream_console(command, ctx.dist_dir, timeout=timeout)


def stream_console(command: list[str], cwd: Path, *, timeout: float | None = None) -> int:
    """Run QEMU, show the guest console without firmware and routine kernel (or Xen)
    lines, and return the exit status ``/init`` reported (:func:`mirage.vm._console.stream`)."""
    return stream(
        command,
        cwd,
        timeout=timeout,
        timeout_hint="the console above says how far it got; raise --vm-timeout",
    )
