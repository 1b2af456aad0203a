"""mirage-vm's plugin: the ``virtio`` target and its keys. Declarations only."""

from __future__ import annotations

from mirage.core import Key, Registry, Target, hookimpl
from mirage.core.dsl import impl, key, match_impl

_U = "mirage-unix"

KEYS = (
    Key("vm-arch", "str", "x86_64", "guest architecture", ("x86_64", "aarch64")),
    Key("vm-kernel", "path", None, "a kernel of your own instead of the distribution's"),
    Key("vm-kernel-version", "str", None, "the version of --vm-kernel (for its modules)"),
    Key("vm-runtime", "path", None, "an unpacked runtime root of your own (usr/bin/python3.11...)"),
    Key("vm-memory", "int", 256, "guest memory in MiB"),
    Key("vm-accel", "str", "tcg", "QEMU accelerator: tcg (emulation) or kvm", ("tcg", "kvm")),
    Key("vm-forward", "str", None, "host TCP ports forwarded to the guest: HOST:GUEST,..."),
)


def _virtio() -> Target:
    # Inside the guest the application is a Linux process: the host-process devices of
    # mirage-unix serve it; the network is the guest kernel's (--net socket, the
    # default until mirage-tcpip's direct stack exists) or ours (--net direct).
    return Target(
        "virtio",
        builder="mirage.vm._target:build",
        runner="mirage.vm._target:run",
        defaults={
            "console": impl("unix_console", dist=_U),
            "sleep": impl("unix_sleep", dist=_U),
            "clock": impl("unix_clock", dist=_U),
            "random": impl("unix_random", dist=_U),
            "stack": match_impl(
                key("net"),
                {"direct": impl("direct_stack", dist="mirage-tcpip")},
                default=impl("socket_stack", dist=_U),
            ),
        },
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
