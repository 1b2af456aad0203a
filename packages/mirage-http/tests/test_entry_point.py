"""The package's entry point loads and registers nothing (HTTP is a library)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import mirage.core._builtin
from mirage.core._registry import PluginInfo
from mirage.core.plugins import load_registry


def http_entry_point() -> object:
    (ep,) = [ep for ep in entry_points(group="mirage") if ep.name == "http"]
    assert ep.value == "mirage.http._plugin"
    return ep.load()


def test_loads_and_registers_nothing() -> None:
    bare = load_registry(entrypoints=False, plugins=[("core", mirage.core._builtin)])
    registry = load_registry(
        entrypoints=False,
        plugins=[("core", mirage.core._builtin), ("http", http_entry_point())],
    )
    assert registry.failures == []
    assert registry.registered_by(PluginInfo("http")) == {}
    assert set(registry.impls) == set(bare.impls)
    assert set(registry.keys) == set(bare.keys)


def test_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, mirage.http._plugin;"
        " print(sorted(m for m in sys.modules if m.startswith('mirage')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = set(eval(out.stdout))
    assert {m for m in loaded if m.startswith("mirage.http")} == {
        "mirage.http",
        "mirage.http._plugin",
    }
