"""The package's entry point loads into a fresh registry and registers ``tls_stack``."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib.metadata import entry_points

import mirage.core._builtin
from mirage.core._registry import PluginInfo
from mirage.core.plugins import load_registry


def tls_entry_point() -> object:
    (ep,) = [ep for ep in entry_points(group="mirage") if ep.name == "tls"]
    assert ep.value == "mirage.tls._plugin"
    return ep.load()


def test_registers_the_tls_stack() -> None:
    registry = load_registry(
        entrypoints=False, plugins=[("core", mirage.core._builtin), ("tls", tls_entry_point())]
    )
    assert registry.failures == []
    assert registry.registered_by(PluginInfo("tls")) == {"impls": ["tls_stack"]}
    impl = registry.impls["tls_stack"].value
    assert impl.provides == "stack"
    assert dict(impl.needs) == {"stack": "stack"}
    assert [a.dest for a in impl.runtime_args] == [
        "tls_cert",
        "tls_key",
        "tls_ca",
        "tls_server_name",
    ]
    assert impl.requires == ("mirage-tls>=0.1,<1",)
    assert "tls_stack" in registry.impls_for("stack")


def test_factory_imports() -> None:
    module, _, name = "mirage.tls.stack:TlsStack".partition(":")
    factory = getattr(importlib.import_module(module), name)
    assert callable(getattr(factory, "connect", None))


def test_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, mirage.tls._plugin;"
        " print(sorted(m for m in sys.modules if m.startswith(('mirage.tls', 'cryptography'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert set(eval(out.stdout)) == {"mirage.tls", "mirage.tls._plugin"}
