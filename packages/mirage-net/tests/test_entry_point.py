"""The package's entry point loads into a fresh registry and registers what it says."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib.metadata import entry_points

import mirage.core._builtin
from mirage.core._registry import PluginInfo
from mirage.core.plugins import load_registry


def net_entry_point() -> object:
    (ep,) = [ep for ep in entry_points(group="mirage") if ep.name == "net"]
    assert ep.value == "mirage.net._plugin"
    return ep.load()


def registry() -> object:
    return load_registry(
        entrypoints=False, plugins=[("core", mirage.core._builtin), ("net", net_entry_point())]
    )


def test_registers_its_interfaces() -> None:
    reg = registry()
    assert reg.failures == []  # type: ignore[attr-defined]
    assert reg.registered_by(PluginInfo("net")) == {  # type: ignore[attr-defined]
        "impls": ["packet", "pcap", "socket", "tap", "vnet"]
    }
    impls = {name: r.value for name, r in reg.impls.items()}  # type: ignore[attr-defined]
    assert all(i.provides == "network" for i in impls.values())
    assert impls["pcap"].needs == {"network": "network"}
    assert [a.dest for a in impls["tap"].runtime_args] == ["name", "mac"]
    assert [a.dest for a in impls["socket"].runtime_args] == ["local", "remote", "mac"]
    assert all(i.requires == ("mirage-net>=0.1,<1",) for i in impls.values())


def test_factories_import() -> None:
    reg = registry()
    for registered in reg.impls.values():  # type: ignore[attr-defined]
        module, _, name = registered.value.factory.partition(":")
        factory = getattr(importlib.import_module(module), name)
        assert callable(getattr(factory, "connect", None)), name


def test_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, mirage.net._plugin;"
        " print(sorted(m for m in sys.modules if m.startswith('mirage')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = set(eval(out.stdout))
    assert {m for m in loaded if m.startswith("mirage.net")} == {"mirage.net", "mirage.net._plugin"}
