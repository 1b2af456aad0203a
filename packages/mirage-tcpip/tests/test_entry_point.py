"""The package's entry point loads into a fresh registry and registers what it says."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib.metadata import entry_points
from typing import Any

import mirage.core._builtin
from mirage.core._registry import PluginInfo
from mirage.core.plugins import load_registry


def registry() -> Any:
    (ep,) = [ep for ep in entry_points(group="mirage") if ep.name == "tcpip"]
    assert ep.value == "mirage.tcpip._plugin"
    return load_registry(
        entrypoints=False, plugins=[("core", mirage.core._builtin), ("tcpip", ep.load())]
    )


def test_registers_the_direct_stack() -> None:
    reg = registry()
    assert reg.failures == []
    assert reg.registered_by(PluginInfo("tcpip")) == {"impls": ["direct_stack"]}
    impl = reg.impls["direct_stack"].value
    assert impl.provides == "stack"
    assert impl.needs == {"network": "network"}
    assert [a.dest for a in impl.runtime_args] == ["ipv4", "ipv4_gateway", "dhcp", "ipv6", "dhcp6"]
    assert impl.factory == "mirage.tcpip.stack:DirectStack"
    module, _, name = impl.factory.partition(":")
    assert callable(getattr(getattr(importlib.import_module(module), name), "connect", None))


def test_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, mirage.tcpip._plugin;"
        " print(sorted(m for m in sys.modules if m.startswith('mirage')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = set(eval(out.stdout))
    assert {m for m in loaded if m.startswith("mirage.tcpip")} == {
        "mirage.tcpip",
        "mirage.tcpip._plugin",
    }
