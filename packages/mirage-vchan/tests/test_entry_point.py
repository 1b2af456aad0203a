"""The package's entry point loads into a fresh registry and registers what it says."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib.metadata import entry_points

import mirage.core._builtin
from mirage.core._registry import PluginInfo
from mirage.core.plugins import load_registry


def vchan_entry_point() -> object:
    (ep,) = [ep for ep in entry_points(group="mirage") if ep.name == "vchan"]
    assert ep.value == "mirage.vchan._plugin"
    return ep.load()


def test_registers_its_flows() -> None:
    registry = load_registry(
        entrypoints=False,
        plugins=[("core", mirage.core._builtin), ("vchan", vchan_entry_point())],
    )
    assert registry.failures == []
    assert registry.registered_by(PluginInfo("vchan")) == {
        "impls": ["vchan_client", "vchan_server"]
    }
    impls = {name: r.value for name, r in registry.impls.items()}
    assert [p.name for p in impls["vchan_server"].params] == ["client", "port"]
    assert [p.name for p in impls["vchan_client"].params] == ["server", "port"]
    for name in ("vchan_client", "vchan_server"):
        impl = impls[name]
        assert impl.provides == "flow"
        assert [a.name for a in impl.runtime_args] == ["xenstore", "xen-sim", "xen-domid"]
        assert impl.requires == ("mirage-vchan>=0.1,<1", "mirage-xen>=0.1,<1")
        module, _, attr = impl.factory.partition(":")
        assert callable(getattr(getattr(importlib.import_module(module), attr), "connect"))


def test_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, mirage.vchan._plugin;"
        " print(sorted(m for m in sys.modules if m.startswith('mirage')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = {m for m in eval(out.stdout) if m.startswith(("mirage.vchan", "mirage.xen"))}
    assert loaded == {"mirage.vchan", "mirage.vchan._plugin", "mirage.xen", "mirage.xen._plugin"}
