"""The package's entry point loads into a fresh registry and registers what it says."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from importlib.metadata import entry_points

import mirage.core._builtin
from mirage.core._registry import PluginInfo
from mirage.core.plugins import load_registry


def load(name: str) -> object:
    (ep,) = [ep for ep in entry_points(group="mirage") if ep.name == name]
    return ep.load()


def test_registers_its_devices() -> None:
    plugin = load("block")
    registry = load_registry(
        entrypoints=False, plugins=[("core", mirage.core._builtin), ("block", plugin)]
    )
    assert registry.failures == []
    assert registry.registered_by(PluginInfo("block")) == {"impls": ["file-block", "memory-block"]}
    impls = {name: r.value for name, r in registry.impls.items()}
    assert {i.provides for i in impls.values()} == {"block"}
    assert [p.name for p in impls["file-block"].params] == [
        "path",
        "sector_size",
        "read_only",
        "size",
    ]
    assert [p.name for p in impls["memory-block"].params] == ["sectors", "sector_size"]
    for impl in impls.values():
        assert impl.requires == ("mirage-block>=0.1,<1",)
        module, _, name = impl.factory.partition(":")
        assert callable(getattr(importlib.import_module(module), name).connect)


def test_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, mirage.block._plugin;"
        " print(sorted(m for m in sys.modules if m.startswith('mirage')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = set(eval(out.stdout))
    assert {m for m in loaded if m.startswith("mirage.block")} == {
        "mirage.block",
        "mirage.block._plugin",
    }
