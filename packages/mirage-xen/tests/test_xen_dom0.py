"""On a real Xen: Debian's hypervisor under QEMU (software emulation) with Debian's
kernel as dom0, whose PID 1 runs dom0_probe.py and dom0_xenstore_probe.py.

One boot (about 25-45 s here). Skips, naming why, without QEMU, apt or the packages.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dom0_image import MARKER, XEN_TOOLS, boot, unavailable

from mirage.core import MirageError

HERE = Path(__file__).resolve().parent
STEPS = (
    # dom0_probe.py: the /dev/xen backend
    "devices",
    "share",
    "map shared-both-ways",
    "atomics",
    "bad-ref-refused",
    "grant-copy",
    "event-channel",
    "unmap-notify",
    "released",
    # dom0_xenstore_probe.py: mirage-xenstored as dom0's xenstored, vchan
    "mirage-xenstored --linux-dom0",
    "debian-tools write-read",
    "debian-tools ls",
    "our-client read watch",
    "our-client write rm",
    "vchan connected-to-libxenvchan",
    "vchan echo-through-libxenvchan",
    "vchan served-libxenvchan",
    "netif connected",
    "netif frames-each-way",
)
PROGRAMS = [
    *(f"usr/bin/xenstore-{name}" for name in ("read", "write", "ls", "rm")),
    "usr/lib/xen-4.17/bin/vchan-socket-proxy",
]
IMPORTS = [
    "asyncio",
    "asyncio.subprocess",
    "concurrent.futures.thread",
    "mirage.xen.linux",
    "mirage.xen.xenstore",
    "mirage.vchan",
    "mirage.vchan._flow",
    "mirage.xen.netback",
    "mirage.xen.netfront",
]


@pytest.mark.slow
@pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))
def test_a_real_dom0() -> None:
    """One boot: grants and event channels through /dev/xen; our xenstored serving
    the dom0 kernel's ring for Debian's tools and our client; our vchan against
    libxenvchan both ways; netfront and netback of one vif, frames each way."""
    try:
        lines = boot(
            [HERE / "dom0_probe.py", HERE / "dom0_xenstore_probe.py"],
            IMPORTS,
            ["xen_gntalloc", "xen_gntdev", "xen_evtchn", "xen_privcmd"],
            programs=PROGRAMS,
            extra_packages=XEN_TOOLS,
            timeout=300,
        )
    except MirageError as exc:  # the packages cannot be fetched here
        pytest.skip(f"cannot build the dom0 image: {exc}")
    text = "\n".join(lines)
    assert f"{MARKER} exit status 0" in text, text[-4000:]
    oks = [line.split(" ok ", 1)[1] for line in lines if line.startswith(f"{MARKER} ok ")]
    assert len(oks) == len(STEPS), text[-4000:]
    for step, seen in zip(STEPS, oks, strict=True):
        assert seen.startswith(step), (step, seen)
