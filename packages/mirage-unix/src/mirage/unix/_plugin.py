"""mirage-unix's plugin: the host devices and the ``unix`` target.

Declarations only: nothing here imports a device.
"""

from __future__ import annotations

from mirage.core import Impl, Registry, RuntimeArg, Target, hookimpl
from mirage.core.dsl import impl, key, match_impl

REQUIRES = ("mirage-unix>=0.1,<1",)
_U = "mirage.unix."

IMPLS = (
    Impl(
        "unix_console",
        "console",
        _U + "console:UnixConsole",
        requires=REQUIRES,
        doc="standard output and input of the host process",
    ),
    Impl("unix_sleep", "sleep", _U + "time:UnixSleep", requires=REQUIRES, doc="asyncio sleep"),
    Impl(
        "unix_clock",
        "clock",
        _U + "time:UnixClock",
        requires=REQUIRES,
        doc="the host's POSIX and monotonic clocks",
    ),
    Impl(
        "unix_random",
        "random",
        _U + "random:UnixRandom",
        requires=REQUIRES,
        doc="the host kernel's random bytes",
    ),
    Impl(
        "host_resolver",
        "resolver",
        _U + "resolver:HostResolver",
        requires=REQUIRES,
        doc="the host's name resolution",
    ),
    Impl(
        "socket_stack",
        "stack",
        _U + "stack:SocketStack",
        runtime_args=(
            RuntimeArg("ipv4", "str", "0.0.0.0", "IPv4 address to listen on"),
            RuntimeArg("ipv6", "str", None, "IPv6 address to listen on (none: IPv4 only)"),
        ),
        requires=REQUIRES,
        doc="the host's TCP/IP through sockets",
    ),
)


def _unix_target() -> Target:
    return Target(
        "unix",
        builder=_U + "_target:build",
        runner=_U + "_target:run",
        defaults={
            "console": impl("unix_console"),
            "sleep": impl("unix_sleep"),
            "clock": impl("unix_clock"),
            "random": impl("unix_random"),
            "resolver": impl("host_resolver"),
            # Frames for our own stack (--net direct): a TAP device of the host.
            "network": impl("tap", dist="mirage-net"),
            "stack": match_impl(
                key("net"),
                {"direct": impl("direct_stack", dist="mirage-tcpip")},
                default=impl("socket_stack"),
            ),
        },
        requires=("mirage-core>=0.1,<1", *REQUIRES),
        doc="a host process; the artifact is a zipapp",
    )


@hookimpl
def mirage_register_impls(registry: Registry) -> None:
    for declaration in IMPLS:
        registry.add_impl(declaration)


@hookimpl
def mirage_register_targets(registry: Registry) -> None:
    registry.add_target(_unix_target())
