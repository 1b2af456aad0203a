"""The device tree that makes Xen on ARM64 boot our image as its only guest.

Xen's "dom0less" boot reads its guests from ``/chosen``: each node there that is
compatible with ``xen,domain`` is a domain Xen builds itself at boot, with its kernel
and ramdisk given as ``multiboot,module`` subnodes whose ``reg`` says where the boot
loader (here QEMU's ``-device loader``) put them. With no dom0 at all, the guest's
console is Xen's emulated PL011 (``vpl011``), which Xen prints on its own UART
prefixed ``(XEN) DOM1: ``.

A guest with a network also gets a driver domain (:mod:`mirage.arm._dom0`): dom0's
kernel and ramdisk are ``multiboot`` modules directly under ``/chosen``, and the guest
is marked ``xen,enhanced`` so that Xen gives it a xenstore event channel that dom0's
``init-dom0less`` then connects.
"""

from __future__ import annotations

from dataclasses import dataclass

from mirage.core import MirageError

from ._dom0 import Dom0
from ._fdt import DeviceTree, Node, pull_fdt, push_fdt, u32, u64

__all__ = [
    "COMMAND_LINE_MAX",
    "DOM0_KERNEL_ADDR",
    "DOM0_RAMDISK_ADDR",
    "DOMAIN",
    "KERNEL_ADDR",
    "RAMDISK_ADDR",
    "Guest",
    "dom0less_tree",
    "set_guest_bootargs",
]

KERNEL_ADDR = 0x49000000
RAMDISK_ADDR = 0x50000000
DOM0_KERNEL_ADDR = 0x58000000
DOM0_RAMDISK_ADDR = 0x5C000000
DOMAIN = "domU1"
COMMAND_LINE_MAX = 2047  # Linux arm64's COMMAND_LINE_SIZE, less the NUL


@dataclass(frozen=True, slots=True)
class Guest:
    """The dom0less guest: kernel and ramdisk sizes and addresses, memory, CPUs and bootargs."""

    kernel_size: int
    ramdisk_size: int
    memory_mib: int
    bootargs: str
    vcpus: int = 1
    kernel_addr: int = KERNEL_ADDR
    ramdisk_addr: int = RAMDISK_ADDR


def _module_name(addr: int) -> str:
    return f"module@{addr:x}"


def _check_bootargs(bootargs: str) -> None:
    if len(bootargs.encode()) > COMMAND_LINE_MAX:
        raise MirageError(
            f"the guest's kernel command line is {len(bootargs.encode())} bytes;"
            f" Linux on arm64 takes at most {COMMAND_LINE_MAX}",
            hint="pass fewer or shorter runtime arguments",
        )


def _fits(what: str, start: int, size: int, limit: int) -> None:
    if start + size > limit:
        raise MirageError(
            f"{what} ({size / 2**20:.1f} MiB at {start:#x}) runs into what the loader puts"
            f" at {limit:#x}",
            hint="use a smaller kernel or image (fewer modules, no HTTPS)",
        )


def _modules(parent: Node, kernel: tuple[int, int], ramdisk: tuple[int, int]) -> Node:
    """A kernel and a ramdisk as ``multiboot`` modules under ``parent``."""
    node = parent.add(_module_name(kernel[0]))
    node.set("compatible", ["multiboot,kernel", "multiboot,module"])
    node.set("reg", u64(*kernel))
    rd = parent.add(_module_name(ramdisk[0]))
    rd.set("compatible", ["multiboot,ramdisk", "multiboot,module"])
    rd.set("reg", u64(*ramdisk))
    return node


def dom0less_tree(
    base: bytes, guest: Guest, *, uart: str | None = None, dom0: Dom0 | None = None
) -> bytes:
    """``base`` (the machine's own tree, e.g. QEMU's dump) with Xen's boot arguments
    and one dom0less guest added to ``/chosen``; with ``dom0``, a driver domain too."""
    _fits("the kernel", guest.kernel_addr, guest.kernel_size, guest.ramdisk_addr)
    if dom0 is not None:
        _fits("the guest's ramdisk", guest.ramdisk_addr, guest.ramdisk_size, dom0.kernel_addr)
        _fits("dom0's kernel", dom0.kernel_addr, dom0.kernel_size, dom0.ramdisk_addr)
    _check_bootargs(guest.bootargs)
    tree = pull_fdt(base)
    memory = tree.find("/memory")
    reg = memory.cells("reg") if memory is not None and "reg" in memory.props else ()
    if len(reg) >= 4:
        start, size = (reg[0] << 32) | reg[1], (reg[2] << 32) | reg[3]
        last = (
            (guest.ramdisk_addr, guest.ramdisk_size)
            if dom0 is None
            else (dom0.ramdisk_addr, dom0.ramdisk_size)
        )
        if last[0] + last[1] > start + size:
            raise MirageError(
                f"the ramdisk ({last[1] / 2**20:.1f} MiB at {last[0]:#x}) runs past the"
                " machine's memory",
                hint="give the machine more memory",
            )
    if uart is None:
        stdout = tree.find("/chosen")
        uart = stdout.string("stdout-path") if stdout and "stdout-path" in stdout.props else None
    chosen = tree.ensure("/chosen")
    chosen.set("#address-cells", 2)
    chosen.set("#size-cells", 2)
    xen_args = ["console=dtuart", "guest_loglvl=all", "bootscrub=0"]
    if uart:
        xen_args.insert(1, f"dtuart={uart}")
    if dom0 is not None:
        # One vCPU: dom0 boots beside the guest, each on a CPU of its own.
        xen_args += [f"dom0_mem={dom0.memory_mib}M", "dom0_max_vcpus=1"]
    chosen.set("xen,xen-bootargs", " ".join(xen_args))
    for child in [c.name for c in chosen.children]:
        if child == DOMAIN or child.startswith("module@"):
            chosen.remove(child)
    if dom0 is not None:
        kernel = _modules(
            chosen,
            (dom0.kernel_addr, dom0.kernel_size),
            (dom0.ramdisk_addr, dom0.ramdisk_size),
        )
        kernel.set("bootargs", dom0.bootargs)
    domain = chosen.add(DOMAIN)
    domain.set("compatible", "xen,domain")
    domain.set("#address-cells", 2)
    domain.set("#size-cells", 2)
    domain.set("memory", u32(0, guest.memory_mib * 1024))  # in KiB
    domain.set("cpus", guest.vcpus)
    domain.set("vpl011", b"")
    if dom0 is not None:
        domain.set("xen,enhanced", "enabled")
    kernel = _modules(
        domain,
        (guest.kernel_addr, guest.kernel_size),
        (guest.ramdisk_addr, guest.ramdisk_size),
    )
    kernel.set("bootargs", guest.bootargs)
    return push_fdt(tree, keep_layout=False)


def set_guest_bootargs(blob: bytes, bootargs: str, *, ramdisk_size: int | None = None) -> bytes:
    """The dom0less tree with the guest's kernel command line replaced (and its
    ramdisk's size, when a run appends files to it)."""
    _check_bootargs(bootargs)
    tree: DeviceTree = pull_fdt(blob)
    domain = tree.get(f"/chosen/{DOMAIN}")
    kernel = ramdisk = None
    for node in domain.children:
        compatible = node.strings("compatible")
        if "multiboot,kernel" in compatible:
            kernel = node
        elif "multiboot,ramdisk" in compatible:
            ramdisk = node
    if kernel is None:
        raise MirageError(f"the device tree has no kernel module under /chosen/{DOMAIN}")
    kernel.set("bootargs", bootargs)
    if ramdisk_size is not None and ramdisk is not None:
        start = ramdisk.cells("reg")
        ramdisk.set("reg", u64((start[0] << 32) | start[1], ramdisk_size))
    return push_fdt(tree, keep_layout=False)
