"""The device tree that makes Xen on ARM64 boot our image as its only guest.

Xen's "dom0less" boot reads its guests from ``/chosen``: each node there that is
compatible with ``xen,domain`` is a domain Xen builds itself at boot, with its kernel
and ramdisk given as ``multiboot,module`` subnodes whose ``reg`` says where the boot
loader (here QEMU's ``-device loader``) put them. With no dom0 at all, the guest's
console is Xen's emulated PL011 (``vpl011``), which Xen prints on its own UART
prefixed ``(XEN) DOM1: ``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mirage.core import MirageError

from ._fdt import DeviceTree, pull_fdt, push_fdt, u32, u64

__all__ = [
    "COMMAND_LINE_MAX",
    "DOMAIN",
    "KERNEL_ADDR",
    "RAMDISK_ADDR",
    "Guest",
    "dom0less_tree",
    "set_guest_bootargs",
]

KERNEL_ADDR = 0x49000000
RAMDISK_ADDR = 0x50000000
DOMAIN = "domU1"
COMMAND_LINE_MAX = 2047  # Linux arm64's COMMAND_LINE_SIZE, less the NUL


@dataclass(frozen=True, slots=True)
class Guest:
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


def dom0less_tree(base: bytes, guest: Guest, *, uart: str | None = None) -> bytes:
    """``base`` (the machine's own tree, e.g. QEMU's dump) with Xen's boot arguments
    and one dom0less guest added to ``/chosen``."""
    if guest.kernel_addr + guest.kernel_size > guest.ramdisk_addr:
        raise MirageError(
            f"the kernel ({guest.kernel_size / 2**20:.1f} MiB) does not fit below the"
            f" ramdisk at {guest.ramdisk_addr:#x}",
            hint="use a smaller kernel",
        )
    _check_bootargs(guest.bootargs)
    tree = pull_fdt(base)
    memory = tree.find("/memory")
    reg = memory.cells("reg") if memory is not None and "reg" in memory.props else ()
    if len(reg) >= 4:
        start, size = (reg[0] << 32) | reg[1], (reg[2] << 32) | reg[3]
        if guest.ramdisk_addr + guest.ramdisk_size > start + size:
            raise MirageError(
                f"the ramdisk ({guest.ramdisk_size / 2**20:.1f} MiB at"
                f" {guest.ramdisk_addr:#x}) runs past the machine's memory",
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
    chosen.set("xen,xen-bootargs", " ".join(xen_args))
    if chosen.child(DOMAIN) is not None:
        chosen.remove(DOMAIN)
    domain = chosen.add(DOMAIN)
    domain.set("compatible", "xen,domain")
    domain.set("#address-cells", 2)
    domain.set("#size-cells", 2)
    domain.set("memory", u32(0, guest.memory_mib * 1024))  # in KiB
    domain.set("cpus", guest.vcpus)
    domain.set("vpl011", b"")
    kernel = domain.add(_module_name(guest.kernel_addr))
    kernel.set("compatible", ["multiboot,kernel", "multiboot,module"])
    kernel.set("reg", u64(guest.kernel_addr, guest.kernel_size))
    kernel.set("bootargs", guest.bootargs)
    ramdisk = domain.add(_module_name(guest.ramdisk_addr))
    ramdisk.set("compatible", ["multiboot,ramdisk", "multiboot,module"])
    ramdisk.set("reg", u64(guest.ramdisk_addr, guest.ramdisk_size))
    return push_fdt(tree, keep_layout=False)


def set_guest_bootargs(blob: bytes, bootargs: str) -> bytes:
    """The dom0less tree with the guest's kernel command line replaced."""
    _check_bootargs(bootargs)
    tree: DeviceTree = pull_fdt(blob)
    domain = tree.get(f"/chosen/{DOMAIN}")
    for node in domain.children:
        if "multiboot,kernel" in node.strings("compatible"):
            node.set("bootargs", bootargs)
            return push_fdt(tree, keep_layout=False)
    raise MirageError(f"the device tree has no kernel module under /chosen/{DOMAIN}")
