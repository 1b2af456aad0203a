"""mirage-xen's plugin: the PV console, block and network devices, and the xen target.

Declarations only: factories are import paths, so loading this module imports no
driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mirage.core import Impl, Key, Param, RuntimeArg, Target, hookimpl
from mirage.vm.defaults import guest_defaults

if TYPE_CHECKING:
    from mirage.core import Registry

REQUIRES = ("mirage-xen>=0.1,<1",)

# Shared by every Xen device (mirage-vchan's too): declared once, identically.
XEN_ARGS = (
    RuntimeArg(
        "xenstore",
        "path",
        None,
        "the xenstore socket (default: $XENSTORED_PATH or /var/run/xenstored/socket)",
    ),
    RuntimeArg("xen-sim", "path", None, "the directory of a simulated hypervisor"),
    RuntimeArg("xen-domid", "int", None, "this domain's id in the simulated hypervisor"),
)

IMPLS = (
    Impl(
        name="xen_console",
        provides="console",
        factory="mirage.xen.devices:XenConsole",
        params=(Param("devid", "int", 0, doc="the console's device number"),),
        runtime_args=XEN_ARGS,
        requires=REQUIRES,
        doc="the Xen PV console (frontend), over the xenbus handshake",
    ),
    Impl(
        name="xen_block",
        provides="block",
        factory="mirage.xen.devices:XenBlock",
        params=(Param("devid", "int", 51712, doc="the virtual disk's number (51712: xvda)"),),
        runtime_args=XEN_ARGS,
        requires=REQUIRES,
        doc="a Xen virtual disk (blkfront), over the xenbus handshake",
    ),
    Impl(
        name="xen_net",
        provides="network",
        factory="mirage.xen.devices:XenNetwork",
        params=(Param("devid", "int", 0, doc="the network interface's number (vif)"),),
        runtime_args=XEN_ARGS,
        requires=REQUIRES,
        doc="a Xen network interface (netfront, rx-copy), over the xenbus handshake",
    ),
)


@hookimpl
def mirage_register_impls(registry: Registry) -> None:
    for declaration in IMPLS:
        registry.add_impl(declaration)


KEYS = (
    Key(
        "xen-boot",
        "str",
        "hypervisor",
        "how mirage run boots a xen image under QEMU: on the Xen hypervisor, or directly as PVH",
        ("hypervisor", "pvh"),
    ),
)


def _xen_target() -> Target:
    # Inside the guest the application is a Linux process on the hvc0 console.
    return Target(
        "xen",
        builder="mirage.xen.target:build",
        runner="mirage.xen.target:run",
        defaults=guest_defaults(),
        requires=("mirage-core>=0.1,<1", "mirage-unix>=0.1,<1", *REQUIRES),
        doc="a Xen PVH guest (x86_64): vmlinux with the PVH note, initramfs, xl.cfg",
    )


@hookimpl
def mirage_register_keys(registry: Registry) -> None:
    for declaration in KEYS:
        registry.add_key(declaration)


@hookimpl
def mirage_register_targets(registry: Registry) -> None:
    registry.add_target(_xen_target())
