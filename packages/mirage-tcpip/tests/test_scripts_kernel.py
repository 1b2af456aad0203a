"""Every script of tests/scripts with the Linux kernel as the stack under test: its
TCP behind a TAP device in throw-away network namespaces (several worker processes,
one namespace each), our runner injecting and capturing the frames. Needs root,
/dev/net/tun and iproute2; skips otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from mirage.net.testing import netns_skip_reason

SCRIPTS = sorted((Path(__file__).parent / "scripts").glob("*.pkt"))
_skip = netns_skip_reason()
pytestmark = pytest.mark.skipif(_skip is not None, reason=_skip or "")


@pytest.fixture(scope="module")
def kernel_results() -> dict[str, str | None]:
    from mirage.tcpip.script._kernel import run_on_kernel

    return run_on_kernel([str(p) for p in SCRIPTS], workers=4)


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_script_on_the_kernel(path: Path, kernel_results: dict[str, str | None]) -> None:
    error = kernel_results[str(path)]
    assert error is None, error
