"""PID 1 of a mirage VM image: the only process in the machine.

Its bytecode goes into the initramfs as the module ``_mirage_vm_init`` of the image's
standard-library folder, and ``/init`` is a script of two lines (after a shebang naming
the image's Python) that imports it and calls :func:`boot`, so that no source is
compiled at boot. It mounts what CPython and the devices need, loads the kernel modules listed
in ``/etc/mirage.json`` (dependencies first), brings up the loopback and, if asked,
configures the NIC, then runs the generated ``main`` from ``/app`` with the runtime
arguments that came on the kernel command line (``MIRAGE_ARGV``, base64 of a JSON
list), prints ``mirage-vm: exit status N`` and powers the machine off.

Before the imports it takes the work done ahead at build time from ``/etc/mirage.cache``
(see :mod:`mirage.vm._record`): the functions that ``dataclasses`` would compile from
generated source, and the regular expressions the imports compile.

Standard library only; nothing here runs on the build host.
"""

import gc
import os
import sys
import time

_STARTED = time.clock_gettime(time.CLOCK_BOOTTIME)
# Imports make many objects and few cycles: the collector, run every few hundred
# allocations, costs about a tenth of the import time. Off until the application is
# imported; what the imports made is then frozen out of later collections.
_AS_INIT = __name__ in ("__main__", "_mirage_vm_init")  # not imported by the build or tests
if _AS_INIT:
    gc.disable()

BOOT_CACHE = "/etc/mirage.cache"


def use_boot_cache(path: str = BOOT_CACHE) -> tuple[int, int]:
    """Take what the build prepared (:mod:`mirage.vm._record`: generated source ->
    code object, and ``(pattern, flags)`` -> the arguments of ``_sre.compile``) into
    ``dataclasses``, ``collections`` (namedtuple) and ``re``. Each is used only for
    exactly the text or pattern recorded; anything else is compiled as before. Returns
    how many functions (and expressions) and how many patterns it took."""
    try:
        with open(path, "rb") as f:
            import marshal

            # Read whole: marshal.load(f) reads the file piece by piece.
            functions, magic, patterns, expressions = marshal.loads(f.read())
        if not all(isinstance(d, dict) for d in (functions, patterns, expressions)):
            return 0, 0
    except (OSError, ValueError, EOFError, TypeError):
        return 0, 0  # none, or not one this interpreter reads: it only saves time
    import builtins

    def prepared(module: object, mode: str, recorded: dict[str, object]) -> object:
        """``exec`` or ``eval`` for ``module``'s globals, taking recorded code."""
        run = getattr(builtins, mode)
        module_globals = vars(module)

        def run_prepared(source, globals=None, locals=None, /):  # type: ignore[no-untyped-def]
            # The modules call exec(text, globals, namespace) and eval(text, namespace);
            # a None stands for the caller's (the module's) globals, as with exec.
            code = recorded.get(source) if isinstance(source, str) else source
            if code is None:
                code = compile(source, "<string>", mode, dont_inherit=True)
            return run(code, module_globals if globals is None else globals, locals)

        return run_prepared

    if functions:
        import dataclasses

        dataclasses.exec = prepared(dataclasses, "exec", functions)  # type: ignore[attr-defined]
    if expressions:
        import collections

        collections.eval = prepared(collections, "eval", expressions)  # type: ignore[attr-defined]
    import _sre  # type: ignore[import-not-found]

    # The pattern code is only for an interpreter with the recording one's code
    # version, word size and limits (a 32-bit one's MAXREPEAT differs).
    if patterns and magic == (_sre.MAGIC, _sre.CODESIZE, _sre.MAXREPEAT, _sre.MAXGROUPS):
        import re._compiler as compiler  # type: ignore[import-not-found]

        original = compiler.compile

        def compile_prepared(p, flags=0):  # type: ignore[no-untyped-def]
            if isinstance(p, (str, bytes)):
                found = patterns.get((p, flags))
                if found is not None:
                    try:
                        return _sre.compile(p, *found)
                    except (RuntimeError, TypeError, ValueError, OverflowError):
                        del patterns[(p, flags)]  # refused by this _sre: compile it
            return original(p, flags)

        compiler.compile = compile_prepared
    else:
        patterns = {}
    return len(functions) + len(expressions), len(patterns)


def trace(what: str) -> None:
    """With ``MIRAGE_TRACE`` on the kernel command line: when (seconds since the
    kernel started) ``/init`` got to ``what``."""
    if os.environ.get("MIRAGE_TRACE"):
        print(f"mirage-vm: {time.clock_gettime(time.CLOCK_BOOTTIME):.3f} {what}", flush=True)


_PREPARED = use_boot_cache() if _AS_INIT else (0, 0)

import base64  # noqa: E402
import ctypes  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402

MARKER = "mirage-vm: exit status"

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount(source: str, target: str, fstype: str) -> None:
    os.makedirs(target, exist_ok=True)
    result = _libc.mount(source.encode(), target.encode(), fstype.encode(), 0, None)
    if result != 0 and ctypes.get_errno() != 16:  # EBUSY: already mounted
        _check(result, f"mount {fstype} on {target}")


def load_module(path: str, number: int) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        result = _libc.syscall(number, fd, b"", 0)
        # EEXIST: built in or loaded already; ENODEV: a driver whose platform this is
        # not (xen-netfront outside Xen), which is then not needed.
        if result != 0 and ctypes.get_errno() not in (17, 19):
            _check(result, f"loading {os.path.basename(path)}")
    finally:
        os.close(fd)


_SIOCGIFFLAGS, _SIOCSIFFLAGS = 0x8913, 0x8914
_SIOCSIFADDR, _SIOCSIFNETMASK, _SIOCADDRT = 0x8916, 0x891C, 0x890B
_IFF_UP = 0x1


def _ifreq(name: str, payload: bytes = b"") -> bytes:
    return struct.pack("16s", name.encode()) + payload.ljust(24, b"\0")


def _sockaddr_in(address: str) -> bytes:
    return struct.pack("=H2s4s8s", socket.AF_INET, b"\0\0", socket.inet_aton(address), b"")


def link_up(name: str) -> None:
    import fcntl

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack_from("H", fcntl.ioctl(s, _SIOCGIFFLAGS, _ifreq(name)), 16)[0]
        fcntl.ioctl(s, _SIOCSIFFLAGS, _ifreq(name, struct.pack("H", flags | _IFF_UP)))


def configure_ipv4(name: str, cidr: str, gateway: str | None) -> None:
    import fcntl

    address, _, prefix = cidr.partition("/")
    bits = int(prefix or "24")
    mask = socket.inet_ntoa(struct.pack("!I", (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s, _SIOCSIFADDR, _ifreq(name, _sockaddr_in(address)))
        fcntl.ioctl(s, _SIOCSIFNETMASK, _ifreq(name, _sockaddr_in(mask)))
        if gateway:
            # struct rtentry (native sizes): pad, dst, gateway, genmask, flags
            # (RTF_UP | RTF_GATEWAY), then fields left zero.
            route = struct.pack(
                "@L16s16s16sH",
                0,
                _sockaddr_in("0.0.0.0"),
                _sockaddr_in(gateway),
                _sockaddr_in("0.0.0.0"),
                0x0003,
            ).ljust(120, b"\0")
            fcntl.ioctl(s, _SIOCADDRT, route)


_SIOCETHTOOL = 0x8946
_ETHTOOL_SGRO = 0x2C  # generic receive offload


def receive_offloads_off(name: str) -> None:
    """No GRO on ``name``: a raw socket must see frames as they came, not merged
    segments with stale checksums. Best effort (a driver may not support it)."""
    import fcntl

    value = ctypes.create_string_buffer(struct.pack("II", _ETHTOOL_SGRO, 0), 8)
    request = struct.pack("16sP", name.encode(), ctypes.addressof(value)).ljust(40, b"\0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            fcntl.ioctl(s, _SIOCETHTOOL, request)
        except OSError:
            pass


def power_off(number: int) -> None:
    _libc.sync()
    # reboot(LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_POWER_OFF)
    _libc.syscall(number, 0xFEE1DEAD, 672274793, 0x4321FEDC, None)


def kernel_ran_init() -> float:
    """When (seconds since the kernel started) the kernel said it runs /init, from its
    log (``/dev/kmsg``, read without waiting); -1.0 if that line is not there."""
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return -1.0
    try:
        while True:
            try:
                record = os.read(fd, 8192)
            except BrokenPipeError:  # the record was overwritten: read on
                continue
            except OSError:  # EAGAIN: no more records
                return -1.0
            prefix, _, text = record.partition(b";")
            if text.startswith(b"Run /init"):
                return int(prefix.split(b",")[2]) / 1e6
    finally:
        os.close(fd)


def process_times() -> tuple[int, float, float]:
    """This process's minor page faults and CPU time (user, system) so far, from /proc
    (PID 1's count the kernel's start as system time)."""
    with open("/proc/self/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[7]), int(fields[11]) / tick, int(fields[12]) / tick


DISKS = ("/dev/vda", "/dev/xvda")
"""The guest's first disk: virtio-blk's, or Xen's PV one (xen-blkfront)."""


def disk_link() -> None:
    """``/dev/disk0``: the first disk, whichever driver found it (the block devices'
    defaults open that name). The disk is probed as its module loads, but its node
    may appear a moment later."""
    deadline = time.monotonic() + 10
    while True:
        found = next((d for d in DISKS if os.path.exists(d)), None)
        if found is not None:
            os.symlink(found, "/dev/disk0")
            return
        if time.monotonic() > deadline:
            print("mirage-vm: no disk appeared (/dev/vda, /dev/xvda)", flush=True)
            return
        time.sleep(0.01)


def wait_for_nic(name: str, seconds: float) -> None:
    """A NIC whose driver finds it late (Xen's netfront in a dom0less guest, once the
    driver domain has written its xenstore nodes): wait up to ``seconds`` for it."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(f"/sys/class/net/{name}"):
        if time.monotonic() > deadline:
            if seconds:
                print(f"mirage-vm: no {name} appeared within {seconds:g} s", flush=True)
            return
        time.sleep(0.02)
    trace(f"{name} present")


def main() -> int:
    trace(f"init started at {_STARTED:.3f}")
    with open("/etc/mirage.json") as f:
        config = json.load(f)
    mount("proc", "/proc", "proc")
    mount("sysfs", "/sys", "sysfs")
    mount("devtmpfs", "/dev", "devtmpfs")
    mount("tmpfs", "/tmp", "tmpfs")
    console = config.get("console")
    if console and os.path.exists(console):
        # Under Xen the console is hvc0, which the kernel's early /dev/console is not.
        fd = os.open(console, os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(fd, target)
        os.close(fd)
    times = (0, 0.0, 0.0)
    if os.environ.get("MIRAGE_TRACE"):
        times = process_times()
        trace(f"kernel ran /init at {kernel_ran_init():.3f}")
        trace("prepared: {} compiled functions, {} regular expressions".format(*_PREPARED))
    for module in config.get("modules", []):
        load_module(module, config["finit_module"])
    trace("modules loaded")
    if config.get("disk"):
        disk_link()
    link_up("lo")
    for nic in config.get("nics", []):
        wait_for_nic(nic, config.get("nic_wait", 0))
        if os.path.exists(f"/sys/class/net/{nic}"):
            if config.get("own_stack"):
                receive_offloads_off(nic)
            link_up(nic)
    ipv4 = os.environ.get("MIRAGE_IPV4")
    if ipv4 and not config.get("own_stack"):
        configure_ipv4("eth0", ipv4, os.environ.get("MIRAGE_GATEWAY"))
    encoded = os.environ.get("MIRAGE_ARGV", "")
    argv = json.loads(base64.urlsafe_b64decode(encoded)) if encoded else []
    sys.path.insert(0, "/app")
    sys.argv = [config.get("name", "unikernel"), *argv]
    trace("importing the application")
    gc.disable()  # off since /init started (see the top)
    import main as application  # type: ignore[import-not-found]  # the generated main

    gc.freeze()
    gc.enable()
    if os.environ.get("MIRAGE_TRACE"):
        faults, user, system = (b - a for a, b in zip(times, process_times(), strict=True))
        trace(
            f"running the application ({faults} page faults, CPU {user:.2f} s user"
            f" and {system:.2f} s system since the mounts)"
        )

    return int(application.main(argv))


def boot() -> None:
    """Run the application as PID 1, report its exit status and power off."""
    status = 1
    number = 169
    try:
        with open("/etc/mirage.json") as f:
            number = json.load(f).get("reboot", number)
        status = main()
    except SystemExit as exc:
        code = exc.code
        status = code if isinstance(code, int) else (0 if code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        print(f"{MARKER} {status}", flush=True)
        power_off(number)


if __name__ == "__main__":
    boot()
