"""mirage-vm's plugin: the ``virtio`` target and its keys. Declarations only."""

from __future__ import annotations

from mirage.core import Key, Registry, Target, hookimpl
from mirage.vm.defaults import guest_defaults

_U = "mirage-unix"

KEYS = (
    Key("vm-arch", "str", "x86_64", "guest architecture", ("x86_64", "aarch64")),
    Key("vm-kernel", "path", None, "a kernel of your own instead of the distribution's"),
    Key("vm-kernel-version", "str", None, "the version of --vm-kernel (for its modules)"),
    Key("vm-runtime", "path", None, "an unpacked runtime root of your own (usr/bin/python3.11...)"),
    Key("vm-memory", "int", 256, "guest memory in MiB"),
    Key(
        "vm-accel",
        "str",
        "auto",
        "QEMU accelerator: auto (KVM where it works, else emulation), tcg or kvm",
        ("auto", "tcg", "kvm"),
    ),
    Key(
        "vm-net",
        "str",
        "user",
        "the NIC's host side: user (QEMU's user network), dgram:LOCAL,REMOTE"
        " (unix:PATH or udp:HOST:PORT each) or tap:NAME; mirage run --vm-net overrides",
    ),
    Key(
        "vm-forward",
        "str",
        None,
        "host TCP ports forwarded to the guest (user network): HOST:GUEST,...",
    ),
    Key(
        "vm-compress",
        "str",
        "none",
        "the initramfs as written (none: fastest to boot) or as one XZ stream (xz: the"
        " smallest artifact; the kernel decompresses it at boot)",
        ("none", "xz"),
    ),
    Key(
        "vm-bytecode",
        "str",
        "bundle",
        "the image's bytecode as one file served by its own importer (bundle: faster"
        " to boot) or as a .pyc file per module (files)",
        ("bundle", "files"),
    ),
    Key(
        "vm-disk",
        "path",
        None,
        "a raw disk image: the guest's disk, /dev/disk0 (the default block device's)",
    ),
)


def _virtio() -> Target:
    return Target(
        "virtio",
        builder="mirage.vm._target:build",
        runner="mirage.vm._target:run",
        defaults=guest_defaults(),
        requires=("mirage-core>=0.1,<1", "mirage-unix>=0.1,<1", "mirage-vm>=0.1,<1"),
        doc="a QEMU/KVM guest: a distribution kernel, an initramfs, the application as PID 1",
    )


@hookimpl
def mirage_register_keys(registry: Registry) -> None:
    for declaration in KEYS:
        registry.add_key(declaration)


@hookimpl
def mirage_register_targets(registry: Registry) -> None:
    registry.add_target(_virtio())
