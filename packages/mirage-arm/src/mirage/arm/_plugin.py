"""mirage-arm's plugin: the ``xen-arm64`` and ``arm`` targets and their keys.

Declarations only: the board names are listed here rather than imported, so that
loading the plugin imports nothing of the build code (a test checks both agree).
"""

from __future__ import annotations

from mirage.core import Key, Registry, Target, hookimpl
from mirage.vm.defaults import guest_defaults

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
    Key(
        "arm-xenstored",
        "str",
        "mirage",
        "xen-arm64's driver domain runs mirage-xen's xenstored (mirage) or Debian's (xen)",
        ("mirage", "xen"),
    ),
)


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
            defaults=guest_defaults(),
            requires=_REQUIRES,
            doc="a dom0less guest of Xen on ARM64: Debian's hypervisor, a device tree of ours",
        )
    )
    registry.add_target(
        Target(
            "arm",
            builder="mirage.arm._target:build_arm",
            runner="mirage.arm._target:run_arm",
            defaults=guest_defaults(),
            requires=_REQUIRES,
            doc="an ARM board (--board): QEMU virt (aarch64, armv7), Raspberry Pi 4, Cubieboard2",
        )
    )
