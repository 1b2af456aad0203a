"""The simulated hypervisor: grants and event channels between processes."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from mirage.core.testing import run
from mirage.xen import HypervisorError
from mirage.xen.sim import SimHypervisor

CHILD = textwrap.dedent(
    """
    import sys, time
    from mirage.xen.sim import SimHypervisor
    root, ref, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    dom = SimHypervisor(root).domain(2)
    page = dom.gnttab.map(1, [ref, ref + 1])
    assert bytes(page.memory[:5]) == b"hello"
    page.memory[4096:4101] = b"world"
    local = dom.evtchn.bind_interdomain(1, port)
    dom.evtchn.notify(local)
    for _ in range(1000):
        if dom.evtchn.pending(local):
            break
        time.sleep(0.005)
    else:
        sys.exit("no event from domain 1")
    assert bytes(page.memory[:5]) == b"again"
    print("done", flush=True)
    """
)


@pytest.fixture
def hv() -> SimHypervisor:
    return SimHypervisor(tempfile.mkdtemp(prefix="mhv"))


async def _two_processes(hv: SimHypervisor) -> None:
    dom = hv.domain(1)
    grant = dom.gnttab.share(2, 2)
    assert len(grant.memory) == 8192 and grant.refs[0] >= 8
    grant.memory[:5] = b"hello"
    port = dom.evtchn.bind_unbound_port(2)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        str(hv.root),
        str(grant.refs[0]),
        str(port),
        stdout=asyncio.subprocess.PIPE,
    )
    await dom.evtchn.wait(port)
    assert bytes(grant.memory[4096:4101]) == b"world"
    grant.memory[:5] = b"again"
    dom.evtchn.notify(port)
    out, _ = await child.communicate()
    assert child.returncode == 0
    assert out == b"done\n"
    dom.close()


def test_grants_and_events_between_processes(hv: SimHypervisor) -> None:
    run(_two_processes(hv))


def test_grants_are_checked(hv: SimHypervisor) -> None:
    one, two, three = hv.domain(1), hv.domain(2), hv.domain(3)
    grant = one.gnttab.share(2, 1, writable=False)
    with pytest.raises(HypervisorError):
        three.gnttab.map(1, grant.refs)  # not granted to domain 3
    with pytest.raises(HypervisorError):
        two.gnttab.map(1, grant.refs)  # read-only grant, mapped writable
    with pytest.raises(HypervisorError):
        two.gnttab.map(1, [999])
    with pytest.raises(HypervisorError):
        two.gnttab.map(1, [grant.refs[0], grant.refs[0] + 5])
    grant.memory[0] = 42
    ro = two.gnttab.map(1, grant.refs, writable=False)
    assert ro.memory[0] == 42
    one.gnttab.end_access(grant)
    with pytest.raises(HypervisorError):
        two.gnttab.map(1, grant.refs, writable=False)
    for d in (one, two, three):
        d.close()


def test_event_channels(hv: SimHypervisor) -> None:
    one, two, three = hv.domain(1), hv.domain(2), hv.domain(3)
    port = one.evtchn.bind_unbound_port(2)
    with pytest.raises(HypervisorError):
        three.evtchn.bind_interdomain(1, port)  # offered to domain 2 only
    with pytest.raises(HypervisorError):
        two.evtchn.bind_interdomain(1, port + 100)
    one.evtchn.notify(port)  # unbound: goes nowhere
    theirs = two.evtchn.bind_interdomain(1, port)
    with pytest.raises(HypervisorError):
        two.evtchn.bind_interdomain(1, port)  # already bound
    assert not two.evtchn.pending(theirs)
    for _ in range(3):
        one.evtchn.notify(port)
    assert two.evtchn.pending(theirs)
    assert not two.evtchn.pending(theirs)  # notifications coalesce
    two.evtchn.notify(theirs)
    assert one.evtchn.pending(port)
    with pytest.raises(HypervisorError):
        one.evtchn.notify(12345)
    for d in (one, two, three):
        d.close()


def test_destroy_runs_unmap_notifications(hv: SimHypervisor) -> None:
    one, two = hv.domain(1), hv.domain(2)
    grant = one.gnttab.share(2, 1)
    mapping = two.gnttab.map(1, grant.refs)
    port = one.evtchn.bind_unbound_port(2)
    theirs = two.evtchn.bind_interdomain(1, port)
    mapping.memory[20] = 1
    two.gnttab.unmap_notify(mapping, 20, theirs)
    assert two.gnttab.fetch_or(mapping, 22, 2) == 0
    assert two.gnttab.fetch_and(mapping, 22, 0xFD) == 2
    assert grant.memory[22] == 0
    hv.destroy(2)  # the toolstack destroys a domain that died
    assert grant.memory[20] == 0
    assert one.evtchn.pending(port)
    two.gnttab.unmap_notify(mapping, 20, theirs)
    mapping.memory[20] = 1
    two.close()  # a clean close notifies too
    assert grant.memory[20] == 0
    assert one.evtchn.pending(port)
    one.close()
    assert not list(Path(hv.root, "notify").iterdir())


def test_grant_copy(tmp_path: Path) -> None:
    """copy_from/copy_to: the granted page's bytes without a mapping, checked
    against the grant (domain, writability, the page's bounds)."""
    hv = SimHypervisor(tmp_path)
    a, b, c = hv.domain(1), hv.domain(2), hv.domain(3)
    try:
        rw = a.gnttab.share(2, 1)
        ro = a.gnttab.share(2, 1, writable=False)
        rw.memory[100:105] = b"hello"
        assert b.gnttab.copy_from(1, rw.refs[0], 100, 5) == b"hello"
        b.gnttab.copy_to(1, rw.refs[0], 4090, b"end!!!")
        assert bytes(rw.memory[4090:4096]) == b"end!!!"
        assert b.gnttab.copy_from(1, ro.refs[0], 0, 4) == bytes(4)
        for bad in (
            lambda: b.gnttab.copy_to(1, ro.refs[0], 0, b"x"),  # read-only grant
            lambda: c.gnttab.copy_from(1, rw.refs[0], 0, 1),  # not granted to 3
            lambda: b.gnttab.copy_from(1, 999, 0, 1),  # no such grant
            lambda: b.gnttab.copy_from(1, rw.refs[0], 4000, 200),  # crosses the page
            lambda: b.gnttab.copy_from(9, 8, 0, 1),  # no such domain
        ):
            with pytest.raises(HypervisorError):
                bad()
        a.gnttab.end_access(rw)
        with pytest.raises(HypervisorError):
            b.gnttab.copy_from(1, rw.refs[0], 0, 1)  # access ended
    finally:
        for d in (a, b, c):
            d.close()
