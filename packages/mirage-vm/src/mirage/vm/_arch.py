"""What differs between architectures: Debian's names, the loader, QEMU, syscalls."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ARCHES", "RUNTIME_PACKAGES", "Arch"]

RUNTIME_PACKAGES = (
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libc6",
    "zlib1g",
    "libexpat1",
    "libffi8",
    "libgcc-s1",  # for compiled wheels (cryptography's Rust code, for HTTPS)
    "liblzma5",  # _lzma and _bz2 (compressed tar archives)
    "libbz2-1.0",
)
"""Debian packages that hold CPython and the shared libraries it and its modules load."""


@dataclass(frozen=True, slots=True)
class Arch:
    """A guest architecture: its Debian names, kernel, loader, QEMU and syscall numbers."""

    name: str
    deb: str  # Debian's architecture name
    triplet: str  # multiarch folder under /lib and /usr/lib
    kernel_flavour: str  # linux-image-<flavour> metapackage
    loader: str  # the ELF interpreter path binaries name
    qemu: str
    qemu_args: tuple[str, ...]
    console: str
    finit_module: int  # syscall numbers used by /init
    reboot: int
    # Words for the kernel command line of a guest on QEMU's machine for the arch.
    kernel_args: tuple[str, ...] = ()


ARCHES = {
    "x86_64": Arch(
        "x86_64",
        "amd64",
        "x86_64-linux-gnu",
        "cloud-amd64",
        "/lib64/ld-linux-x86-64.so.2",
        "qemu-system-x86_64",
        # RDRAND (emulated): the kernel's random pool is ready at once, where it would
        # otherwise gather jitter entropy for about a second before CPython can start
        # (which reads /dev/urandom for its hash seed).
        ("-cpu", "qemu64,+rdrand"),
        "ttyS0",
        313,
        169,
        # QEMU's pc machine routes PCI interrupts both through ACPI (links whose _SRS
        # AML the kernel evaluates at boot and again as a driver enables its device)
        # and through the BIOS's $PIR table. Measured under TCG, the ACPI path costs
        # 0.19 s of the kernel's boot and 0.1 s of the NIC driver's probe; the table
        # costs neither. A device then interrupts on its INTx line (without ACPI's
        # interrupt routing the kernel sets up no MSI domain: it warns, and falls back).
        ("acpi=noirq", "pci=nomsi"),
    ),
    "aarch64": Arch(
        "aarch64",
        "arm64",
        "aarch64-linux-gnu",
        "arm64",
        "/lib/ld-linux-aarch64.so.1",
        "qemu-system-aarch64",
        ("-machine", "virt", "-cpu", "cortex-a57"),
        "ttyAMA0",
        273,
        142,
    ),
}
