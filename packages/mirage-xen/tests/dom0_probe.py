"""Run inside a real Xen dom0 (see dom0_image.py): the /dev/xen backend end to end.

Prints ``dom0-probe: ok <step>`` per step that worked; any failure raises.
"""

from __future__ import annotations

import asyncio
import os

from mirage.xen import HypervisorError
from mirage.xen.linux import LinuxDomain, available


def ok(step: str) -> None:
    print(f"dom0-probe: ok {step}", flush=True)


async def main() -> None:
    why = available()
    assert why is None, why
    ok("devices")
    dom = LinuxDomain(0)
    try:
        gnttab, evtchn = dom.gnttab, dom.evtchn
        grant = gnttab.share(0, 2)
        ok(f"share refs={list(grant.refs)}")
        mapping = gnttab.map(0, grant.refs)
        grant.memory[0:5] = b"hello"
        assert bytes(mapping.memory[0:5]) == b"hello"
        mapping.memory[4096 + 100 : 4096 + 105] = b"world"
        assert bytes(grant.memory[4096 + 100 : 4096 + 105]) == b"world"
        ok("map shared-both-ways")
        assert gnttab.fetch_or(mapping, 4096, 3) == 0 and grant.memory[4096] == 3
        assert gnttab.fetch_and(grant, 4096, 1) == 3 and mapping.memory[4096] == 1
        ok("atomics")
        try:
            gnttab.map(0, [0xFFFFFF])
        except HypervisorError as err:
            ok(f"bad-ref-refused {err}")
        else:
            raise AssertionError("a bad grant reference was mapped")
        gnttab.copy_to(0, grant.refs[1], 8, b"copied")
        assert bytes(grant.memory[4096 + 8 : 4096 + 14]) == b"copied"
        assert gnttab.copy_from(0, grant.refs[0], 0, 5) == b"hello"
        ok("grant-copy")
        port = evtchn.bind_unbound_port(0)
        other = evtchn.bind_interdomain(0, port)
        evtchn.notify(other)
        await asyncio.wait_for(evtchn.wait(port), 20)
        evtchn.notify(port)
        await asyncio.wait_for(evtchn.wait(other), 20)
        ok(f"event-channel ports={port},{other}")
        # The unmap notification: closing the mapping clears a byte and signals.
        gnttab.unmap_notify(mapping, 4096 + 200, other)
        grant.memory[4096 + 200] = 1
        gnttab.unmap(mapping)
        await asyncio.wait_for(evtchn.wait(port), 20)
        assert grant.memory[4096 + 200] == 0
        ok("unmap-notify")
        evtchn.unbind(other)
        evtchn.unbind(port)
        gnttab.end_access(grant)
        ok("released")
    finally:
        dom.close()
    print(f"dom0-probe: pid {os.getpid()} done", flush=True)


asyncio.run(main())
