"""The guest console as ``mirage run`` shows it, and the exit status it reports.

Shared by every hypervisor target (virtio, xen, mirage-arm's boards and Xen on ARM).

:class:`ConsoleFilter` is sans-IO: it is fed the machine's serial output one line at a
time and answers what to show (or nothing) and, once, the exit status that ``/init``
printed (``mirage-vm: exit status N``). Firmware banners (SeaBIOS, iPXE, a Xen PV
kernel's first words) are dropped, also where the application's first line follows
one on the same line. Under Xen on ARM (``domain`` set) only the lines Xen relays for
that guest count, with Xen's ``(XEN) DOM1: `` prefix taken off; Xen's own lines are
hidden unless they speak of a crash. Routine kernel lines (``[    0.000000] ...``) are
hidden unless they speak of a failure.

:func:`stream` is the driver: it runs QEMU, feeds the filter, and stops QEMU once the
status is known (Xen keeps running after its only guest powers off, so QEMU would
not exit by itself there), when ``timeout`` passes, or on SIGTERM/SIGINT.
"""

from __future__ import annotations

import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from mirage.core import MirageError

__all__ = ["MARKER", "ConsoleFilter", "Seen", "stream"]

MARKER = "mirage-vm: exit status"
_ESCAPE = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|c)")
_KERNEL_LINE = re.compile(r"^\[\s*\d+\.\d+\] ")
_FIRMWARE = re.compile(
    r"^(SeaBIOS \(version[^)]*\)|Booting from ROM\.*|iPXE[^\n]*"
    r"|mapping kernel into physical memory|about to get started\.\.\.)"
)
_XEN = "(XEN) "
_TROUBLE = ("panic", "oops", "bug:", "crash", "fatal", "error", "failed", "unable")
_XEN_TROUBLE = ("panic", "crash", "fatal")


@dataclass(frozen=True, slots=True)
class Seen:
    """What one line of console output means: text to show, and/or the exit status."""

    show: str | None = None
    status: int | None = None


_BENIGN = (
    "mp-bios bug: 8254 timer not connected",
    "xen:cpu_hotplug: unable to read cpu state",
)
"""Kernel lines that sound like trouble and are not: an emulated machine that is slow
(a loaded host) fails the kernel's timer interrupt check, and the kernel uses another
route; a dom0less guest's xenstore has no ``cpu/`` nodes (no toolstack wrote them)."""


def _troubled(line: str, words: tuple[str, ...]) -> str | None:
    lowered = line.lower()
    if any(b in lowered for b in _BENIGN):
        return None
    return line if any(w in lowered for w in words) else None


class ConsoleFilter:
    def __init__(self, domain: int | None = None) -> None:
        self.prefix = f"{_XEN}DOM{domain}: " if domain is not None else None
        self.status: int | None = None

    def feed(self, raw: str) -> Seen:
        text = _ESCAPE.sub("", raw.replace("\r", "")).rstrip("\n")
        if self.prefix is not None and text.startswith(self.prefix):
            text = text[len(self.prefix) :]
        elif text.startswith(_XEN):
            return Seen(_troubled(text, _XEN_TROUBLE))
        elif self.prefix is not None and _KERNEL_LINE.match(text):
            return Seen(_troubled(text, ("panic", "oops", "bug:")))
        line = _FIRMWARE.sub("", text)
        if line != raw.rstrip("\r\n") and not line.strip():
            return Seen()  # only control sequences, a banner, or an empty relayed line
        if line.startswith(MARKER):
            try:
                self.status = int(line[len(MARKER) :].strip())
            except ValueError:
                return Seen(line)
            return Seen(status=self.status)
        if _KERNEL_LINE.match(line):
            return Seen(_troubled(line, _TROUBLE))
        return Seen(line)


def stream(
    command: list[str],
    cwd: Path,
    *,
    domain: int | None = None,
    timeout: float | None = None,
    timeout_hint: str = "the console above says how far it got",
) -> int:
    """Run QEMU, show the guest's console, return the status the guest reported."""
    if shutil.which(command[0]) is None:
        package = "qemu-system-x86" if command[0].endswith("x86_64") else "qemu-system-arm"
        raise MirageError(f"{command[0]} is not installed", hint=f"apt-get install {package}")
    child = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    assert child.stdout is not None
    lines: queue.Queue[bytes | None] = queue.Queue()

    def pump() -> None:
        assert child.stdout is not None
        for raw in child.stdout:
            lines.put(raw)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    console = ConsoleFilter(domain)
    stopped: list[int] = []

    def stop(signum: int, frame: object) -> None:
        stopped.append(signum)
        child.terminate()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    deadline = None if timeout is None else time.monotonic() + timeout
    timed_out = False
    try:
        while console.status is None:
            wait = None if deadline is None else max(deadline - time.monotonic(), 0.01)
            try:
                raw = lines.get(timeout=wait)
            except queue.Empty:
                timed_out = True
                break
            if raw is None:
                break
            seen = console.feed(raw.decode("utf-8", "replace"))
            if seen.show is not None:
                sys.stdout.write(seen.show + "\n")
                sys.stdout.flush()
    finally:
        if child.poll() is None:
            if console.status is not None:
                try:  # a bare machine powers off by itself at once
                    child.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
            if child.poll() is None:
                child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if console.status is not None:
        return console.status
    if stopped:
        print(f"mirage: stopped the guest on {signal.Signals(stopped[0]).name}", file=sys.stderr)
        return 0
    if timed_out:
        raise MirageError(
            f"the guest reported no exit status within {timeout:g} s", hint=timeout_hint
        )
    print(
        f"mirage: the guest stopped without an exit status (QEMU: {child.returncode});"
        " the console above says why",
        file=sys.stderr,
    )
    return 1
