"""The ``xen`` target (x86_64): a PVH guest image, and boots on the real hypervisor.

Images are built with mirage-vm (:mod:`mirage.vm.images`). The image is the virtio
target's initramfs with the kernel as Xen needs it: an
uncompressed ELF ``vmlinux`` carrying the PVH entry note, taken out of the
distribution's generic kernel (its bzImage holds an XZ stream; the cloud kernel is
LZ4, which the standard library cannot read, and has no dom0 support). Beside it go an
``xl.cfg`` and a libvirt description for a Xen host, and the hypervisor itself.

``mirage run`` boots it under QEMU (software emulation) one of two ways
(``--xen-boot``): ``hypervisor`` (default) starts Debian's Xen hypervisor with the
image as its first domain, the only domain there is; ``pvh`` starts the image
directly as a PVH guest of QEMU, which is quicker.
"""

from __future__ import annotations

import gzip
import json
import lzma
import shutil
import sys
from pathlib import Path

from mirage.core import MirageError
from mirage.core.build import ArtifactContext
from mirage.vm import images as _debs
from mirage.vm.images import (
    ARCHES,
    DISK_MODULES,
    RUNTIME_PACKAGES,
    build_initramfs,
    disk_args,
    disk_notes,
    find_kernel,
    guest_boot,
    has_pvh_entry,
    host_files,
    kernel_command_line,
    network_notes,
    run_timeout,
    split_run_options,
    stream_console,
)

__all__ = ["build", "extract_vmlinux", "qemu_command", "run"]

XEN_PACKAGE = "xen-hypervisor-4.17-amd64"
XEN_NET_MODULES = ("xen_netfront",)
XEN_BLOCK_MODULES = ("xen_blkfront",)
"""On a Xen host the disk is Xen's PV one (``/dev/xvda``); under QEMU a virtio one."""
_XZ_MAGIC = b"\xfd7zXZ\x00"


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The ELF kernel inside an XZ-compressed bzImage."""
    start = bzimage.find(_XZ_MAGIC)
    if start < 0:
        raise MirageError(
            "the kernel image holds no XZ stream",
            hint="use an XZ-compressed kernel (Debian's generic one)",
        )
    try:
        vmlinux = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(bzimage[start:])
    except lzma.LZMAError as exc:
        raise MirageError(f"the kernel's XZ stream is damaged: {exc}") from None
    if not has_pvh_entry(vmlinux):
        raise MirageError(
            "the kernel has no Xen PVH entry note", hint="use a kernel built with CONFIG_PVH"
        )
    return vmlinux


def _vmlinux(kernel: Path) -> Path:
    cached = _debs.cache_dir() / "vmlinux" / f"{kernel.name}.elf"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_bytes(extract_vmlinux(kernel.read_bytes()))
        tmp.replace(cached)
    return cached


def build(ctx: ArtifactContext) -> list[Path]:
    keys = dict(ctx.plan.keys)
    arch = ARCHES["x86_64"]
    kernel_package = _debs.kernel_package("amd64", arch.deb)
    log: list[str] = []
    debs = _debs.fetch([*RUNTIME_PACKAGES, kernel_package, XEN_PACKAGE], arch.deb, log)
    for line in log:
        print(line, file=sys.stderr)
    root = _debs.unpack(debs)
    kernel, version = find_kernel(root)
    hypervisor = sorted((root / "boot").glob("xen-*-amd64.gz"))
    if not hypervisor:
        raise MirageError(f"{XEN_PACKAGE} holds no hypervisor image")
    notes = {**network_notes(ctx), **disk_notes(ctx)}
    network, block = notes["network"], notes["block"]
    name = ctx.plan.name
    dist = ctx.dist_dir
    dist.mkdir(parents=True, exist_ok=True)
    image = build_initramfs(
        ctx,
        arch,
        root,
        version,
        network=network,
        out=dist / f"{name}.initrd",
        console="/dev/hvc0",
        own_stack=notes["stack"] == "direct",
        # On a Xen host the NIC is Xen's PV one; under QEMU, a virtio one.
        kernel_modules=[
            *(XEN_NET_MODULES if network else ()),
            *((*XEN_BLOCK_MODULES, *DISK_MODULES) if block else ()),
        ],
        disk=block,
    )
    shutil.copyfile(_vmlinux(kernel), dist / f"{name}.vmlinux")
    (dist / f"{name}.xen").write_bytes(gzip.decompress(hypervisor[-1].read_bytes()))
    memory = int(keys.get("vm-memory") or 256)
    info = {
        **notes,
        "memory": memory,
        "boot": keys.get("xen-boot") or "hypervisor",
    }
    (dist / f"{name}.xen.json").write_text(json.dumps(info, indent=1))
    # On a Xen host the guest's NIC is on a bridge: the address of a link of one's own
    # (10.0.0.2/24, no gateway), which --ipv4 in the runtime arguments changes.
    _, words, argv = guest_boot({**info, "net": "tap:vif", "forward": ""}, [])
    extra = kernel_command_line("hvc0", words, argv)
    devices = "vif = ['bridge=xenbr0']\n" if network else ""
    # The disk: the image --vm-disk named, else a file beside the configuration.
    disk = notes["disk"] or f"{name}.disk"
    if block:
        devices += f"disk = ['format=raw, vdev=xvda, access=rw, target={disk}']\n"
    (dist / f"{name}.xl.cfg").write_text(
        f"# Xen guest for the {name} unikernel: xl create {name}.xl.cfg\n"
        f"name = '{name}'\ntype = 'pvh'\nkernel = '{name}.vmlinux'\n"
        f"ramdisk = '{name}.initrd'\nextra = '{extra}'\nmemory = {memory}\nvcpus = 1\n"
        f"on_poweroff = 'destroy'\non_crash = 'preserve'\n{devices}"
    )
    (dist / f"{name}.xen.libvirt.xml").write_text(
        f"<domain type='xen'>\n  <name>{name}</name>\n  <memory unit='MiB'>{memory}</memory>\n"
        "  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64' machine='xenpvh'>xenpvh</type>\n"
        f"    <kernel>{(dist / f'{name}.vmlinux').resolve()}</kernel>\n"
        f"    <initrd>{(dist / f'{name}.initrd').resolve()}</initrd>\n"
        f"    <cmdline>{extra}</cmdline>\n  </os>\n"
        "  <on_poweroff>destroy</on_poweroff>\n  <devices>\n"
        "    <console type='pty'><target type='xen' port='0'/></console>\n"
        + (
            "    <interface type='bridge'><source bridge='xenbr0'/></interface>\n"
            if network
            else ""
        )
        + (
            "    <disk type='file' device='disk'><driver name='qemu' type='raw'/>"
            f"<source file='{Path(disk).resolve() if notes['disk'] else dist / disk}'/>"
            "<target dev='xvda' bus='xen'/></disk>\n"
            if block
            else ""
        )
        + "  </devices>\n</domain>\n"
    )
    print(
        f"image: vmlinux {(dist / f'{name}.vmlinux').stat().st_size / 2**20:.1f} MiB, initrd"
        f" {image.size / 2**20:.1f} MiB; Xen {hypervisor[-1].name}",
        file=sys.stderr,
    )
    return [dist / f"{name}.vmlinux", image.initrd, dist / f"{name}.xl.cfg"]


def qemu_command(
    dist: Path, name: str, argv: list[str], options: dict[str, str] | None = None
) -> list[str]:
    """QEMU booting the image (``--xen-boot``): on Xen as its first domain, or as a
    PVH guest of QEMU. Either way the NIC is a virtio one that the guest kernel
    drives (as Xen's first domain owns the machine's PCI devices)."""
    info = json.loads((dist / f"{name}.xen.json").read_text())
    options = dict(options or {})
    disk = disk_args(info, options)  # a virtio disk: QEMU has no Xen PV one
    # Host files that path arguments name go in an archive appended to the initrd.
    argv, initrd_path = host_files(info, argv, dist / f"{name}.initrd", dist / f"{name}.run.initrd")
    initrd = initrd_path.name
    net_args, words, guest_argv = guest_boot(info, argv, options)
    common = ["-accel", "tcg", "-nographic", "-nodefaults", "-no-reboot", "-serial", "stdio"]
    if info["boot"] == "pvh":
        return [
            "qemu-system-x86_64",
            *common,
            "-cpu",
            "qemu64,+rdrand",  # the guest's random pool ready at once (see mirage-vm)
            "-m",
            str(info["memory"]),
            "-kernel",
            f"{name}.vmlinux",
            "-initrd",
            initrd,
            "-append",
            kernel_command_line("ttyS0", words, guest_argv),
            *net_args,
            *disk,
        ]
    # The hypervisor, with our image as its first (and only) domain.
    cmdline = kernel_command_line("hvc0", words, guest_argv)
    if "," in cmdline:
        raise MirageError(
            "a runtime argument holds a comma, which QEMU's -initrd list cannot carry",
            hint="use --xen-boot pvh",
        )
    return [
        "qemu-system-x86_64",
        *common,
        "-cpu",
        "qemu64,+svm,+rdrand",
        "-m",
        str(info["memory"] + 512),
        "-kernel",
        f"{name}.xen",
        "-append",
        f"console=com1 com1=115200,8n1 dom0_mem={info['memory']}M noreboot",
        "-initrd",
        f"{name}.vmlinux {cmdline},{initrd}",
        *net_args,
        *disk,
    ]


def run(ctx: ArtifactContext, argv: list[str]) -> int:
    name = ctx.plan.name
    if not (ctx.dist_dir / f"{name}.xen.json").exists():
        raise MirageError(
            f"{ctx.dist_dir / name}.vmlinux does not exist", hint="run 'mirage build' first"
        )
    options, guest_argv = split_run_options(argv)
    timeout = run_timeout(options)
    command = qemu_command(ctx.dist_dir, name, guest_argv, options)
    return stream_console(command, ctx.dist_dir, timeout=timeout)
