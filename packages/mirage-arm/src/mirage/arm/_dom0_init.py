"""PID 1 of the driver domain (dom0) that gives a dom0less guest its network.

Copied into dom0's initramfs as ``/init`` (with a shebang naming the image's Python)
and run by dom0's kernel; standard library only, nothing here runs on the build host.

Xen builds the guest itself at boot (``xen,enhanced``: it allocates the guest's
xenstore event channel and leaves the xenstore page to dom0). This program: mounts
what the tools need, loads the kernel modules from ``/etc/mirage-dom0.json`` (the
Xen devices, netback, the bridge, the NIC), starts Xen's ``xenstored``, runs
``xen-init-dom0`` and ``init-dom0less`` (which introduces the guest to xenstored, so
the guest's xenbus comes up), writes the guest's vif in one xenstore transaction
(frontend and backend, the backend directory readable by the guest first), and
bridges the backend's ``vifN.0`` with dom0's own NIC. It then stays, as dom0 must.
A step that fails is printed (``mirage-arm dom0: ...``) and dom0 powers off, which
stops the machine.
"""

import ctypes
import fcntl
import json
import os
import socket
import struct
import sys
import time
from typing import Any

_libc = ctypes.CDLL(None, use_errno=True)
XEN_BIN = "/usr/lib/xen-4.17/bin"
XENSTORE_WRITE = "/usr/bin/xenstore-write"
XENSTORE_CHMOD = "/usr/bin/xenstore-chmod"
BRIDGE = "xenbr0"
MIRAGE_XENSTORED = "/usr/lib/mirage-xenstored"  # mirage-xen and cffi, as bytecode
_SIOCGIFFLAGS, _SIOCSIFFLAGS = 0x8913, 0x8914
_SIOCBRADDBR, _SIOCBRADDIF = 0x89A0, 0x89A2
_IFF_UP = 0x1


class Dom0Error(Exception):
    pass


def say(what: str) -> None:
    print(f"mirage-arm dom0: {what}", flush=True)


def trace(config: dict[str, Any], what: str) -> None:
    if config.get("trace"):
        say(f"{time.clock_gettime(time.CLOCK_BOOTTIME):.3f} {what}")


def mount(source: str, target: str, fstype: str) -> None:
    os.makedirs(target, exist_ok=True)
    if _libc.mount(source.encode(), target.encode(), fstype.encode(), 0, None) != 0:
        errno = ctypes.get_errno()
        if errno != 16:  # EBUSY: mounted already
            raise Dom0Error(f"mount {fstype} on {target}: {os.strerror(errno)}")


def load_module(path: str, number: int) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.syscall(number, fd, b"", 0) != 0:
            errno = ctypes.get_errno()
            if errno not in (17, 19):  # EEXIST: built in; ENODEV: not for this machine
                raise Dom0Error(f"loading {os.path.basename(path)}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def spawn(argv: list[str]) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            # The tools' chatter ("Done setting up Dom0") stays off the console;
            # their errors (standard error) do not.
            quiet = os.open("/dev/null", os.O_WRONLY)
            os.dup2(quiet, 1)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    return pid


def run(argv: list[str]) -> None:
    _, status = os.waitpid(spawn(argv), 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise Dom0Error(f"{os.path.basename(argv[0])} exited with status {code}")


def wait_for(path: str, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise Dom0Error(f"{what} did not appear within {seconds:g} s")
        time.sleep(0.02)


def _ifreq(name: str, payload: bytes = b"") -> bytes:
    return struct.pack("16s", name.encode()) + payload.ljust(24, b"\0")


def link_up(name: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        flags: int = struct.unpack_from("H", fcntl.ioctl(sock, _SIOCGIFFLAGS, _ifreq(name)), 16)[0]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, _ifreq(name, struct.pack("H", flags | _IFF_UP)))


def make_bridge(name: str, ports: list[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock, _SIOCBRADDBR, name.encode().ljust(16, b"\0"))
        for port in ports:
            index = socket.if_nametoindex(port)
            fcntl.ioctl(sock, _SIOCBRADDIF, _ifreq(name, struct.pack("i", index)))
            link_up(port)
    link_up(name)


def vif_nodes(guest: int, mac: str) -> list[str]:
    """``xenstore-write``'s arguments for the guest's first vif: frontend and backend
    together, so that neither end sees the other missing."""
    front = f"/local/domain/{guest}/device/vif/0"
    back = f"/local/domain/0/backend/vif/{guest}/0"
    nodes = {
        f"{front}/backend": back,
        f"{front}/backend-id": "0",
        f"{front}/handle": "0",
        f"{front}/mac": mac,
        f"{front}/state": "1",
        f"{back}/frontend": front,
        f"{back}/frontend-id": str(guest),
        f"{back}/handle": "0",
        f"{back}/mac": mac,
        f"{back}/online": "1",
        f"{back}/type": "vif",
        # netback reads the hotplug script's name; nothing runs it here, so its
        # status is written as the script would.
        f"{back}/script": "/etc/xen/scripts/vif-bridge",
        f"{back}/hotplug-status": "connected",
        f"{back}/state": "1",
    }
    return [word for pair in nodes.items() for word in pair]


def main() -> None:
    mount("proc", "/proc", "proc")
    mount("sysfs", "/sys", "sysfs")
    mount("devtmpfs", "/dev", "devtmpfs")
    if os.path.exists("/dev/hvc0"):
        fd = os.open("/dev/hvc0", os.O_RDWR)
        for std in (0, 1, 2):
            os.dup2(fd, std)
        os.close(fd)
    with open("/etc/mirage-dom0.json") as f:
        config = json.load(f)
    trace(config, "dom0 started")
    for module in config["modules"]:
        load_module(module, config["finit_module"])
    trace(config, "modules loaded")
    for target in ("/run", "/var/lib", "/tmp"):
        mount("tmpfs", target, "tmpfs")
    for folder in ("/run/xenstored", "/run/xen", "/var/lib/xenstored", "/var/lib/xen"):
        os.makedirs(folder, exist_ok=True)
    if not os.path.exists("/var/run"):
        os.symlink("/run", "/var/run")
    mount("xenfs", "/proc/xen", "xenfs")
    if config.get("xenstored") == "mirage":
        # mirage-xen's xenstored: dom0's kernel's ring (it signals the port, after
        # which the kernel probes netback), Debian's tools on the socket, then the
        # guest's ring once init-dom0less introduces it.
        spawn(
            [
                sys.executable,
                "-IS",
                "-c",
                f"import sys\nsys.path.insert(0, {MIRAGE_XENSTORED!r})\n"
                # The standard library it shares with the guest, from the guest's
                # bytecode bundle where there is one; its own mirage.xen and the rest
                # of what it imports from its files.
                "try:\n import _mirage_bundle\nexcept ImportError:\n pass\n"
                "else:\n _mirage_bundle.install(skip=('mirage',))\n"
                "from mirage.xen.xenstore._daemon import main\n"
                "main(['--linux-dom0', '--socket', '/run/xenstored/socket'])\n",
            ]
        )
    else:
        spawn([f"{XEN_BIN}/xenstored", "--no-fork", "--pid-file", "/run/xenstored.pid"])
    wait_for("/run/xenstored/socket", 60, "xenstored's socket")
    trace(config, "xenstored listening")
    run([f"{XEN_BIN}/xen-init-dom0"])
    trace(config, "dom0's nodes written")
    run([f"{XEN_BIN}/init-dom0less"])
    trace(config, "guest introduced")
    guest = int(config["guest"])
    run([XENSTORE_WRITE, f"/local/domain/0/backend/vif/{guest}", ""])
    run([XENSTORE_CHMOD, f"/local/domain/0/backend/vif/{guest}", "n0", f"r{guest}"])
    run([XENSTORE_WRITE, *vif_nodes(guest, config["mac"])])
    trace(config, "vif written")
    uplink, vif = config["uplink"], f"vif{guest}.0"
    wait_for(f"/sys/class/net/{uplink}", 60, f"dom0's NIC {uplink}")
    wait_for(f"/sys/class/net/{vif}", 60, f"the guest's backend interface {vif}")
    make_bridge(BRIDGE, [uplink, vif])
    trace(config, f"{BRIDGE}: {uplink} + {vif}")


def power_off(number: int) -> None:
    _libc.sync()
    _libc.syscall(number, 0xFEE1DEAD, 672274793, 0x4321FEDC, None)


if __name__ == "__main__":
    try:
        main()
    except BaseException as exc:  # dom0 must report, then stop
        say(f"failed: {exc}")
        sys.stdout.flush()
        reboot = 142
        try:
            with open("/etc/mirage-dom0.json") as f:
                reboot = json.load(f).get("reboot", reboot)
        finally:
            power_off(reboot)
    while True:
        time.sleep(3600)
