"""The package's entry point loads into a fresh registry and registers what it says."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib.metadata import entry_points

import mirage.core._builtin
from mirage.core._registry import PluginInfo
from mirage.core.plugins import load_registry


def irmin_entry_point() -> object:
    (ep,) = [ep for ep in entry_points(group="mirage") if ep.name == "irmin"]
    assert ep.value == "mirage.irmin._plugin"
    return ep.load()


def test_registers_the_irmin_device() -> None:
    registry = load_registry(
        entrypoints=False, plugins=[("core", mirage.core._builtin), ("irmin", irmin_entry_point())]
    )
    assert registry.failures == []
    assert registry.registered_by(PluginInfo("irmin")) == {"impls": ["irmin"]}
    impl = registry.impls["irmin"].value
    assert impl.provides == "kv_rw"
    assert [(p.name, p.type, p.default) for p in impl.params] == [
        ("root", "path", None),
        ("branch", "str", "main"),
        ("backend", "str", "git"),
    ]
    assert impl.requires == ("mirage-irmin>=0.1,<1",)
    module, _, name = impl.factory.partition(":")
    factory = getattr(importlib.import_module(module), name)
    assert callable(getattr(factory, "connect", None))


def test_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, mirage.irmin._plugin;"
        " print(sorted(m for m in sys.modules if m.startswith('mirage')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = set(eval(out.stdout))
    assert {m for m in loaded if m.startswith("mirage.irmin")} == {
        "mirage.irmin",
        "mirage.irmin._plugin",
    }
