"""mirage-arm's plugin: the ``xen-arm64`` and ``arm`` targets and their keys.

Declarations only: the board names are listed here rather than imported, so that
loading the plugin imports nothing of the build code (a test checks both agree).
"""

from __future__ import annotations

from typing import Any

from mirage.core import Key, Registry, Target, hookimpl
from mirage.core.dsl import impl, key, match_impl

_U = "mirage-unix"
BOARD_NAMES = ("virt-aarch64", "virt-armv7", "rpi4", "cubieboard2")
_REQUIRES = (
    "mirage-core>=0.1,<1",
    "mirage-unix>=0.1,<1",
    "mirage-vm>=0.1,<1",
    "mirage-arm>=0.1,<1",
)

KEYS = (
    Key("board", "str", "virt-aarch64", "the ARM board profile of the arm target", BOARD_NAMES),
    Key("arm-timeout", "int", 300, "seconds mirage run waits for an ARM guest's exit status"),
)


def _defaults() -> dict[str, Any]:
    # Inside the guest the application is a Linux process: mirage-unix's devices.
    return {
        "console": impl("unix_console", dist=_U),
        "sleep": impl("unix_sleep", dist=_U),
        "clock": impl("unix_clock", dist=_U),
        "random": impl("unix_random", dist=_U),
        "stack": match_impl(
            key("net"),
            {"direct": impl("direct_stack", dist="mirage-tcpip")},
            default=impl("socket_stack", dist=_U),
        ),
    }


@hookimpl
def mirage_register_keys(registry: Registry) -> None:
    for declaration in KEYS:
        registry.add_key(declaration)


@hookimpl
def mirage_register_targets(registry: Registry) -> None:
    registry.add_target(
        Target(
            "xen-arm64",
            builder="mirage.arm._target:build_xen",
            runner="mirage.arm._target:run_xen",
            defaults=_defaults(),
            requires=_REQUIRES,
            doc="a dom0less guest of Xen on ARM64: Debian's hypervisor, a device tree of ours",
        )
    )
    registry.add_target(
        Target(
            "arm",
            builder="mirage.arm._target:build_arm",
            runner="mirage.arm._target:run_arm",
            defaults=_defaults(),
            requires=_REQUIRES,
            doc="an ARM board (--board): QEMU virt (aarch64, armv7), Raspberry Pi 4, Cubieboard2",
        )
    )
