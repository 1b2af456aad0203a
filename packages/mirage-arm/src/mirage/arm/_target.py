"""The ``xen-arm64`` and ``arm`` targets: build an ARM image, and boot it where we can.

Both reuse mirage-vm's image: the runtime and kernel are taken from Debian's packages
for the guest's architecture (``apt-get download``, cached by version), and the
initramfs (pruned CPython, sourceless bytecode, ``/init``) is written on the host.

``xen-arm64`` adds Debian's ARM64 Xen hypervisor and a dom0less device tree written
by :mod:`mirage.arm._dom0less` from QEMU's own ``virt`` tree; ``mirage run`` boots
Xen under ``qemu-system-aarch64``, which loads the guest's kernel and initramfs at the
addresses the tree names. A guest with a network gets Xen's PV NIC (netfront) from a
driver domain built beside it (:mod:`mirage.arm._dom0`), which bridges it to QEMU's
NIC: ``--vm-net``/``--vm-forward`` work as on the other hypervisor targets.

``arm`` builds for a board profile (``--board``): the QEMU ``virt`` boards boot under
QEMU; the real boards get their kernel, initramfs, device tree and U-Boot script
written, to be copied to the board's boot partition.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mirage.core import MirageError
from mirage.core.build import ArtifactContext
from mirage.vm._arch import RUNTIME_PACKAGES, Arch
from mirage.vm._image import Image, build_initramfs, find_kernel
from mirage.vm.images import (
    direct_boot,
    guest_boot,
    host_files,
    kernel_command_line,
    network_notes,
    run_timeout,
    split_run_options,
    stack_kind,
)

from ._boards import ARM_ARCHES, BOARDS, EXTRA_RUNTIME, Board, boot_script
from ._console import stream
from ._dom0 import DOM0_PACKAGES, GUEST_NIC_MODULES, Dom0, driver_domain
from ._dom0less import (
    DOM0_KERNEL_ADDR,
    DOM0_RAMDISK_ADDR,
    KERNEL_ADDR,
    RAMDISK_ADDR,
    Guest,
    dom0less_tree,
    set_guest_bootargs,
)
from ._fdt import FdtError, pull_fdt, push_fdt
from ._packages import fetch_root
from ._uboot import script_image

__all__ = [
    "XEN_PACKAGE",
    "build_arm",
    "build_xen",
    "dump_virt_dtb",
    "run_arm",
    "run_xen",
    "xen_qemu_command",
]

XEN_PACKAGE = "xen-hypervisor-4.17-arm64"
# Two physical CPUs for Xen (QEMU runs each on a host thread): the driver domain and the
# guest boot side by side instead of taking turns on one. With one, QEMU's tree gives
# the CPU no enable-method; with two, both come with PSCI's, which Xen needs.
XEN_MACHINE = (
    "-machine",
    "virt,virtualization=on,gic-version=3",
    "-cpu",
    "cortex-a57",
    "-smp",
    "2",
)
XEN_HOST_MEMORY = 2048  # MiB: Xen, and the guest's memory inside it
DEFAULT_TIMEOUT = 300
NIC_WAIT = 240  # s: the guest's netfront appears once dom0 has booted and written its vif
_HINT = "the console above says how far it got; raise --arm-timeout for slow machines"


def _keys(ctx: ArtifactContext) -> dict[str, Any]:
    return dict(ctx.plan.keys)


def _needs_network(ctx: ArtifactContext) -> bool:
    return stack_kind(ctx.plan) is not None


def _fetch_root(arch: Arch, flavour: str, extra: list[str]) -> tuple[Path, Path, str]:
    """The unpacked runtime, kernel (and ``extra`` packages): root, kernel, version."""
    packages = [*RUNTIME_PACKAGES, *EXTRA_RUNTIME.get(arch.name, ()), *extra]
    root = fetch_root(packages, flavour, arch.deb)
    kernel, version = find_kernel(root)
    return root, kernel, version


def _no_disk(ctx: ArtifactContext, target: str) -> None:
    """The ARM images have no disk driver yet: refuse a block device at build time
    rather than fail at start on a missing ``/dev/disk0``."""
    keys = _keys(ctx)
    blocks = [d.id for d in ctx.plan.devices if d.module_type == "block"]
    if blocks or keys.get("vm-disk"):
        raise MirageError(
            f"the {target} images have no disk driver yet"
            + (f" (the configuration's block device {blocks[0]!r})" if blocks else ""),
            where="--vm-disk" if not blocks else "block device",
            hint="use -t virtio (or -t xen) for an application with a disk",
        )


def _build_image(
    ctx: ArtifactContext,
    arch: Arch,
    root: Path,
    version: str,
    network: bool,
    *,
    kernel_modules: tuple[str, ...] = (),
    nic_wait: float = 0,
) -> Image:
    ctx.dist_dir.mkdir(parents=True, exist_ok=True)
    image = build_initramfs(
        ctx,
        arch,
        root,
        version,
        network=network,
        out=ctx.dist_dir / f"{ctx.plan.name}.initrd",
        own_stack=network and stack_kind(ctx.plan) == "direct",
        kernel_modules=kernel_modules,
        nic_wait=nic_wait,
    )
    if image.left_out:
        print(f"note: left out of the image: {', '.join(image.left_out)}", file=sys.stderr)
    return image


def dump_virt_dtb(qemu: str, machine: tuple[str, ...], memory_mib: int) -> bytes:
    """The device tree QEMU's ``virt`` machine would give a guest with this memory."""
    if shutil.which(qemu) is None:
        raise MirageError(
            f"{qemu} is not installed; the device tree is QEMU's own",
            hint="apt-get install qemu-system-arm",
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "virt.dtb"
        args = list(machine)
        args[1] += f",dumpdtb={path}"
        result = subprocess.run(
            [qemu, *args, "-m", str(memory_mib), "-nographic", "-nodefaults"],
            capture_output=True,
            text=True,
            check=False,
        )
        if not path.exists():
            raise MirageError(f"{qemu} wrote no device tree: {result.stderr.strip()[-500:]}")
        return path.read_bytes()


def _write_script(path: Path, argv: list[str]) -> None:
    path.write_text(f'#!/bin/sh\ncd "$(dirname "$0")" && exec {shlex.join(argv)}\n')
    path.chmod(0o755)


# -- xen-arm64 --------------------------------------------------------------------------


def _mmio_nic(net_args: list[str]) -> list[str]:
    """QEMU's NIC for dom0 on the virtio-mmio bus (a platform device, which dom0
    drives 1:1 mapped; the ``virt`` board's PCIe bridge is not Xen dom0's)."""
    return [
        "virtio-net-device,netdev=n0" if arg.startswith("virtio-net-pci,") else arg
        for arg in net_args
    ]


def build_xen(ctx: ArtifactContext) -> list[Path]:
    keys = _keys(ctx)
    _no_disk(ctx, "xen-arm64")
    network = _needs_network(ctx)
    arch = ARM_ARCHES["aarch64"]
    extra = [XEN_PACKAGE, *(DOM0_PACKAGES if network else ())]
    root, kernel, version = _fetch_root(arch, arch.kernel_flavour, extra)
    hypervisor = sorted((root / "boot").glob("xen-*-arm64"))
    if not hypervisor:
        raise MirageError(f"{XEN_PACKAGE} holds no hypervisor image (boot/xen-*-arm64)")
    image = _build_image(
        ctx,
        arch,
        root,
        version,
        network=network,
        kernel_modules=GUEST_NIC_MODULES if network else (),
        nic_wait=NIC_WAIT if network else 0,
    )
    name, dist = ctx.plan.name, ctx.dist_dir
    shutil.copyfile(kernel, dist / f"{name}.kernel")
    shutil.copyfile(hypervisor[-1], dist / f"{name}.xen")
    memory = int(keys.get("vm-memory") or 256)
    notes = network_notes(ctx)
    info: dict[str, Any] = {
        **notes,
        "timeout": int(keys.get("arm-timeout") or DEFAULT_TIMEOUT),
        "memory": memory,
        "dom0": network,
    }
    written = [dist / f"{name}.xen", dist / f"{name}.kernel", image.initrd]
    dom0 = None
    kernel_size = kernel.stat().st_size
    if network:
        ramdisk = driver_domain(
            root,
            version,
            arch,
            image.initrd.read_bytes(),
            xenstored=str(keys.get("arm-xenstored") or "mirage"),
        )
        (dist / f"{name}.dom0.initrd").write_bytes(ramdisk)
        written.append(dist / f"{name}.dom0.initrd")
        dom0 = Dom0(kernel_size, len(ramdisk), DOM0_KERNEL_ADDR, DOM0_RAMDISK_ADDR)
    _, words, guest_argv = guest_boot(notes, [])
    guest = Guest(
        kernel_size=kernel_size,
        ramdisk_size=image.size,
        memory_mib=memory,
        bootargs=kernel_command_line("ttyAMA0", words, guest_argv),
    )
    base = dump_virt_dtb(arch.qemu, XEN_MACHINE, XEN_HOST_MEMORY)
    (dist / f"{name}.dtb").write_bytes(dom0less_tree(base, guest, dom0=dom0))
    written.insert(1, dist / f"{name}.dtb")
    (dist / f"{name}.xen-arm64.json").write_text(json.dumps(info, indent=1))
    script = dist / f"{name}.qemu.sh"
    net_args, _, _ = guest_boot(notes, [])
    _write_script(
        script, xen_qemu_command(name, f"{name}.dtb", dom0=network, devices=_mmio_nic(net_args))
    )
    print(
        f"image: kernel {kernel_size / 2**20:.1f} MiB, initrd {image.size / 2**20:.1f} MiB;"
        f" Xen {hypervisor[-1].name}; dom0less tree {name}.dtb"
        + (
            f"; driver domain (dom0) ramdisk {dom0.ramdisk_size / 2**20:.1f} MiB"
            if dom0 is not None
            else ""
        ),
        file=sys.stderr,
    )
    return written


def xen_qemu_command(
    name: str,
    dtb: str,
    *,
    initrd: str | None = None,
    dom0: bool = False,
    devices: list[str] | None = None,
) -> list[str]:
    """Xen under QEMU with the dom0less guest (and, with ``dom0``, the driver domain)
    placed where the tree says; ``devices`` are QEMU's NIC arguments (dom0's NIC)."""
    loaders = [
        (f"{name}.kernel", KERNEL_ADDR),
        (initrd or f"{name}.initrd", RAMDISK_ADDR),
    ]
    if dom0:
        loaders += [
            (f"{name}.kernel", DOM0_KERNEL_ADDR),
            (f"{name}.dom0.initrd", DOM0_RAMDISK_ADDR),
        ]
    return [
        "qemu-system-aarch64",
        "-accel",
        "tcg",
        *XEN_MACHINE,
        "-m",
        str(XEN_HOST_MEMORY),
        "-nographic",
        "-nodefaults",
        "-no-reboot",
        "-serial",
        "stdio",
        "-kernel",
        f"{name}.xen",
        "-dtb",
        dtb,
        *[
            arg
            for path, addr in loaders
            for arg in ("-device", f"loader,file={path},addr={addr:#x},force-raw=on")
        ],
        *(devices or []),
    ]


def run_xen(ctx: ArtifactContext, argv: list[str]) -> int:
    name, dist = ctx.plan.name, ctx.dist_dir
    info_path = dist / f"{name}.xen-arm64.json"
    if not info_path.exists():
        raise MirageError(f"{dist / name}.dtb does not exist", hint="run 'mirage build' first")
    info = json.loads(info_path.read_text())
    options, guest_argv = split_run_options(argv)
    timeout = run_timeout(options)
    initrd = Path(f"{name}.initrd")
    if info.get("path_args"):
        guest_argv, booted = host_files(
            info, guest_argv, dist / initrd, dist / f"{name}.run.initrd"
        )
        initrd = Path(booted.name)
    net_args, words, guest_argv = guest_boot(info, guest_argv, options)
    size = (dist / initrd).stat().st_size
    if info.get("dom0") and RAMDISK_ADDR + size > DOM0_KERNEL_ADDR:
        raise MirageError(
            f"the guest's ramdisk with the run's files is {size / 2**20:.1f} MiB, more than"
            f" the {(DOM0_KERNEL_ADDR - RAMDISK_ADDR) / 2**20:.0f} MiB below dom0's kernel",
            hint="pass smaller files",
        )
    # The runtime arguments ride on the guest's command line, in the tree.
    dtb = f"{name}.run.dtb"
    blob = set_guest_bootargs(
        (dist / f"{name}.dtb").read_bytes(),
        kernel_command_line("ttyAMA0", words, guest_argv),
        ramdisk_size=size,
    )
    (dist / dtb).write_bytes(blob)
    command = xen_qemu_command(
        name, dtb, initrd=str(initrd), dom0=bool(info.get("dom0")), devices=_mmio_nic(net_args)
    )
    return stream(
        command,
        dist,
        domain=1,
        timeout=timeout if timeout is not None else info["timeout"],
        timeout_hint=_HINT,
    )


# -- arm (board profiles) ---------------------------------------------------------------


def _board(keys: dict[str, Any]) -> Board:
    name = keys.get("board") or "virt-aarch64"
    board = BOARDS.get(name)
    if board is None:
        raise MirageError(
            f"no board profile {name!r}",
            where="--board",
            hint=f"choose one of: {', '.join(BOARDS)}",
        )
    return board


def build_arm(ctx: ArtifactContext) -> list[Path]:
    keys = _keys(ctx)
    _no_disk(ctx, "arm")
    board = _board(keys)
    arch = ARM_ARCHES[board.arch]
    network = _needs_network(ctx)
    if network and board.load != "qemu":
        raise MirageError(
            f"the {board.name} profile has no network driver list yet: the image cannot hand"
            " a NIC to the configuration's stack",
            where="--board",
            hint="use a configuration without a network stack, or --board virt-aarch64",
        )
    root, kernel, version = _fetch_root(arch, board.kernel_flavour, [])
    image = _build_image(ctx, arch, root, version, network=network)
    name, dist = ctx.plan.name, ctx.dist_dir
    shutil.copyfile(kernel, dist / f"{name}.kernel")
    memory = int(keys.get("vm-memory") or 256)
    notes = network_notes(ctx)
    _, words, guest_argv = guest_boot(notes, [])
    bootargs = kernel_command_line(board.console, words, guest_argv)
    written = [dist / f"{name}.kernel", image.initrd]
    if board.dtb is None:
        # QEMU makes the tree at boot; a copy is written for reference when QEMU is here.
        if shutil.which(arch.qemu):
            (dist / f"{name}.dtb").write_bytes(dump_virt_dtb(arch.qemu, arch.qemu_args, memory))
            written.append(dist / f"{name}.dtb")
    else:
        source = root / "usr" / "lib" / f"linux-image-{version}" / board.dtb
        if not source.is_file():
            raise MirageError(
                f"the kernel package for {board.name} ships no {board.dtb}",
                hint=f"look under usr/lib/linux-image-{version}/ of the kernel package",
            )
        try:
            tree = pull_fdt(source.read_bytes())
        except FdtError as exc:
            raise MirageError(f"{source.name} is not a device tree: {exc}") from None
        tree.ensure("/chosen").set("bootargs", bootargs)
        (dist / f"{name}.dtb").write_bytes(push_fdt(tree, keep_layout=False))
        written.append(dist / f"{name}.dtb")
    if board.load == "u-boot":
        text = boot_script(board, name, bootargs)
        (dist / "boot.cmd").write_text(text)
        (dist / "boot.scr").write_bytes(script_image(text, arch=board.arch, name=name))
        written += [dist / "boot.cmd", dist / "boot.scr"]
    info = {
        **notes,
        "board": board.name,
        "memory": memory,
        "timeout": int(keys.get("arm-timeout") or DEFAULT_TIMEOUT),
    }
    (dist / f"{name}.arm.json").write_text(json.dumps(info, indent=1))
    if board.boots_here:
        script = dist / f"{name}.qemu.sh"
        _write_script(script, arm_qemu_command(name, board, info, []))
        written.append(script)
    print(
        f"image for {board.name}: kernel {kernel.stat().st_size / 2**20:.1f} MiB, initrd"
        f" {image.size / 2**20:.1f} MiB; written: {', '.join(p.name for p in written)}",
        file=sys.stderr,
    )
    return written


def arm_qemu_command(
    name: str,
    board: Board,
    info: dict[str, Any],
    argv: list[str],
    options: dict[str, str] | None = None,
    *,
    dist: Path | None = None,
) -> list[str]:
    """QEMU's command line (run in ``dist``). With ``dist``, host files that path
    arguments name (``--tls-cert cert.pem``) go into the guest in an archive appended
    to a copy of the initrd (see :func:`mirage.vm.images.host_files`)."""
    arch = ARM_ARCHES[board.arch]
    initrd = Path(f"{name}.initrd")
    if dist is not None and info.get("path_args"):
        argv, booted = host_files(info, argv, dist / initrd, dist / f"{name}.run.initrd")
        initrd = Path(booted.name)
    net_args, words, guest_argv = guest_boot(info, argv, options)
    return direct_boot(
        arch.qemu,
        accel="tcg",
        machine=arch.qemu_args,
        memory_mib=info["memory"],
        kernel=f"{name}.kernel",
        initrd=str(initrd),
        append=kernel_command_line(board.console, words, guest_argv),
        devices=net_args,
    )


def run_arm(ctx: ArtifactContext, argv: list[str]) -> int:
    name, dist = ctx.plan.name, ctx.dist_dir
    info_path = dist / f"{name}.arm.json"
    if not info_path.exists():
        raise MirageError(f"{dist / name}.initrd does not exist", hint="run 'mirage build' first")
    info = json.loads(info_path.read_text())
    board = BOARDS[info["board"]]
    if not board.boots_here:
        raise MirageError(
            f"the {board.name} board cannot be booted on this machine",
            hint=f"copy {name}.kernel, {name}.initrd, {name}.dtb and boot.scr from {dist}"
            " to the board's boot partition, and boot it with U-Boot",
        )
    options, guest_argv = split_run_options(argv)
    command = arm_qemu_command(name, board, info, guest_argv, options, dist=dist)
    return stream(command, dist, timeout=info["timeout"], timeout_hint=_HINT)
