"""The package's entry point loads into a fresh registry and registers what it says."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib.metadata import entry_points

import mirage.core._builtin
from mirage.core._registry import PluginInfo
from mirage.core.plugins import load_registry


def kv_entry_point() -> object:
    (ep,) = [ep for ep in entry_points(group="mirage") if ep.name == "kv"]
    assert ep.value == "mirage.kv._plugin"
    return ep.load()


def test_registers_its_stores_and_key() -> None:
    registry = load_registry(
        entrypoints=False, plugins=[("core", mirage.core._builtin), ("kv", kv_entry_point())]
    )
    assert registry.failures == []
    assert registry.registered_by(PluginInfo("kv")) == {
        "keys": ["kv-ro"],
        "impls": ["crunch", "directory", "memory", "tar"],
    }
    impls = {name: r.value for name, r in registry.impls.items()}
    assert {n: i.provides for n, i in impls.items()} == {
        "crunch": "kv_ro",
        "directory": "kv_rw",
        "memory": "kv_rw",
        "tar": "kv_ro",
    }
    assert impls["crunch"].build == "mirage.kv._crunch:build"
    assert [p.name for p in impls["directory"].params] == ["root"]
    assert [p.name for p in impls["tar"].params] == ["path"]
    assert all(i.requires == ("mirage-kv>=0.1,<1",) for i in impls.values())
    assert registry.impls_for("kv_ro") == ["crunch", "directory", "memory", "tar"]
    assert registry.keys["kv-ro"].value.choices == ("crunch", "directory")


def test_factories_and_build_steps_import() -> None:
    registry = load_registry(
        entrypoints=False, plugins=[("core", mirage.core._builtin), ("kv", kv_entry_point())]
    )
    for registered in registry.impls.values():
        impl = registered.value
        for path in filter(None, (impl.factory, impl.build)):
            module, _, name = path.partition(":")
            assert callable(getattr(importlib.import_module(module), name)), path
        factory = getattr(
            importlib.import_module(impl.factory.partition(":")[0]), impl.factory.partition(":")[2]
        )
        assert callable(getattr(factory, "connect", None)), impl.name


def test_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, mirage.kv._plugin;"
        " print(sorted(m for m in sys.modules if m.startswith('mirage')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = set(eval(out.stdout))
    assert {m for m in loaded if m.startswith("mirage.kv")} == {"mirage.kv", "mirage.kv._plugin"}
