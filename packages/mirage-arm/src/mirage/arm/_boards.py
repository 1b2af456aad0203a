"""Board profiles, as data: what each machine needs from an image, and how it loads it.

A profile names the guest architecture (which decides the Debian architecture, the
runtime packages and the syscall numbers ``/init`` uses), the kernel flavour (Debian's
``linux-image-<flavour>``), the kernel's console, where the device tree comes from
(QEMU generates its own for ``virt``; a real board's is shipped in the kernel package
under ``usr/lib/linux-image-<version>/``), and how the image is loaded: by QEMU
directly, or by U-Boot running a boot script from the board's boot partition.
"""

from __future__ import annotations

from dataclasses import dataclass

from mirage.vm._arch import ARCHES, Arch

__all__ = ["ARM_ARCHES", "BOARDS", "EXTRA_RUNTIME", "Board", "boot_script"]

ARM_ARCHES: dict[str, Arch] = {
    "aarch64": ARCHES["aarch64"],
    "armv7": Arch(
        "armv7",
        "armhf",
        "arm-linux-gnueabihf",
        "armmp-lpae",
        "/lib/ld-linux-armhf.so.3",
        "qemu-system-arm",
        ("-machine", "virt,highmem=off", "-cpu", "cortex-a15"),
        "ttyAMA0",
        379,  # finit_module on ARM EABI
        88,  # reboot
    ),
}

EXTRA_RUNTIME: dict[str, tuple[str, ...]] = {
    "aarch64": (),
    # Debian's armhf CPython links libgcc_s (its 64-bit builds do not).
    "armv7": ("libgcc-s1",),
}
"""Runtime packages an architecture needs beyond mirage-vm's list."""


@dataclass(frozen=True, slots=True)
class Board:
    """A board profile: architecture, kernel, console, device tree, and how the image is loaded."""

    name: str
    doc: str
    arch: str  # a key of ARM_ARCHES
    kernel_flavour: str
    console: str  # the kernel's console= argument
    dtb: str | None  # under usr/lib/linux-image-<version>/, or None: QEMU makes it
    load: str  # "qemu" or "u-boot"
    boot_command: str = ""  # U-Boot's command for this kernel format
    network: bool = False  # whether the image can hand a NIC to the application

    @property
    def boots_here(self) -> bool:
        """Whether ``mirage run`` can boot it (under QEMU) on this kind of machine."""
        return self.load == "qemu"


BOARDS: dict[str, Board] = {
    board.name: board
    for board in (
        Board(
            "virt-aarch64",
            "QEMU's virt machine, 64-bit (Cortex-A57)",
            "aarch64",
            "arm64",
            "ttyAMA0",
            None,
            "qemu",
        ),
        Board(
            "virt-armv7",
            "QEMU's virt machine, 32-bit (Cortex-A15, LPAE kernel)",
            "armv7",
            "armmp-lpae",
            "ttyAMA0",
            None,
            "qemu",
        ),
        Board(
            "rpi4",
            "Raspberry Pi 4 Model B (BCM2711), U-Boot from the boot partition",
            "aarch64",
            "arm64",
            "ttyS1,115200",
            "broadcom/bcm2711-rpi-4-b.dtb",
            "u-boot",
            "booti",
        ),
        Board(
            "cubieboard2",
            "Cubieboard2 (Allwinner A20), U-Boot from the SD card",
            "armv7",
            "armmp-lpae",
            "ttyS0,115200",
            "sun7i-a20-cubieboard2.dtb",
            "u-boot",
            "bootz",
        ),
    )
}


def boot_script(board: Board, name: str, bootargs: str) -> str:
    """The U-Boot script that loads ``<name>.kernel``, ``.initrd`` and ``.dtb`` from the
    partition U-Boot's distro boot found it on, and boots them."""
    if board.load != "u-boot":
        raise ValueError(f"{board.name} is not loaded by U-Boot")
    load = "load ${devtype} ${devnum}:${distro_bootpart}"
    return (
        f"# U-Boot script for the {name} unikernel on {board.doc}.\n"
        f"# Build boot.scr from it with: mkimage -T script -d boot.cmd boot.scr\n"
        f'setenv bootargs "{bootargs}"\n'
        f"{load} ${{kernel_addr_r}} {name}.kernel\n"
        f"{load} ${{ramdisk_addr_r}} {name}.initrd\n"
        "setenv initrd_size ${filesize}\n"
        f"{load} ${{fdt_addr_r}} {name}.dtb\n"
        f"{board.boot_command} ${{kernel_addr_r}} ${{ramdisk_addr_r}}:${{initrd_size}}"
        " ${fdt_addr_r}\n"
    )
