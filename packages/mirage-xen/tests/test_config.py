"""config.py chooses Xen's devices for the xen target: a resolution through the
installed plugins (mirage-tcpip's stack over our netfront)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mirage.core._resolve import load_config, resolve
from mirage.core.plugins import load_registry

CONFIG = """
from mirage.core.dsl import impl, job, register
net = impl("xen_net", devid=0)
register("web", job("unikernel:start",
                    stack=impl("direct_stack", dist="mirage-tcpip", needs={"network": net}),
                    disk=impl("xen_block")))
"""


def test_xen_devices_resolve_for_the_xen_target(tmp_path: Path) -> None:
    pytest.importorskip("mirage.tcpip", reason="needs mirage-tcpip (the stack over netfront)")
    (tmp_path / "config.py").write_text(textwrap.dedent(CONFIG))
    registry = load_registry()
    config = load_config(tmp_path / "config.py")
    plan = resolve(config, registry, "xen", {}, config_path=tmp_path / "config.py")
    net = plan.device("xen_net")
    assert net.module_type == "network"
    assert net.factory == "mirage.xen.devices:XenNetwork"
    assert net.params == {"devid": 0}
    assert {a["name"] for a in net.runtime_args} >= {"xenstore", "xen-sim", "xen-domid"}
    assert plan.device("direct_stack").needs == {"network": "xen_net"}
    assert "mirage-xen>=0.1,<1" in plan.requires
