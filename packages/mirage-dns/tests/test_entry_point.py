"""The package's entry point loads into a fresh registry and registers what it says."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib.metadata import entry_points

import mirage.core._builtin
from mirage.core._registry import PluginInfo
from mirage.core.plugins import load_registry


def dns_entry_point() -> object:
    (ep,) = [ep for ep in entry_points(group="mirage") if ep.name == "dns"]
    assert ep.value == "mirage.dns._plugin"
    return ep.load()


def test_registers_its_resolver() -> None:
    registry = load_registry(
        entrypoints=False, plugins=[("core", mirage.core._builtin), ("dns", dns_entry_point())]
    )
    assert registry.failures == []
    assert registry.registered_by(PluginInfo("dns")) == {
        "impls": ["dns_recursive_resolver", "dns_resolver"]
    }
    impl = registry.impls["dns_resolver"].value
    assert impl.provides == "resolver"
    assert dict(impl.needs) == {"stack": "stack"}
    assert [a.name for a in impl.runtime_args] == ["nameserver"]
    assert impl.requires == ("mirage-dns>=0.1,<1",)
    module, _, name = impl.factory.partition(":")
    factory = getattr(importlib.import_module(module), name)
    assert callable(getattr(factory, "connect", None))


def test_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, mirage.dns._plugin;"
        " print(sorted(m for m in sys.modules if m.startswith('mirage')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = set(eval(out.stdout))
    assert {m for m in loaded if m.startswith("mirage.dns")} == {"mirage.dns", "mirage.dns._plugin"}


def test_registers_its_recursive_resolver() -> None:
    registry = load_registry(
        entrypoints=False, plugins=[("core", mirage.core._builtin), ("dns", dns_entry_point())]
    )
    impl = registry.impls["dns_recursive_resolver"].value
    assert impl.provides == "resolver"
    assert dict(impl.needs) == {"stack": "stack"}
    assert [a.name for a in impl.runtime_args] == ["root_hints"]
    assert impl.runtime_args[0].default.split(",")[0] == "198.41.0.4"
    module, _, name = impl.factory.partition(":")
    factory = getattr(importlib.import_module(module), name)
    assert callable(getattr(factory, "connect", None))
