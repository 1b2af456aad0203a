"""The package's entry point loads into a fresh registry and registers what it says."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib.metadata import entry_points

import mirage.core._builtin
from mirage.core._registry import PluginInfo
from mirage.core.plugins import load_registry


def xen_entry_point() -> object:
    (ep,) = [ep for ep in entry_points(group="mirage") if ep.name == "xen"]
    assert ep.value == "mirage.xen._plugin"
    return ep.load()


def test_registers_its_devices() -> None:
    registry = load_registry(
        entrypoints=False, plugins=[("core", mirage.core._builtin), ("xen", xen_entry_point())]
    )
    assert registry.failures == []
    assert registry.registered_by(PluginInfo("xen")) == {
        "impls": ["xen_block", "xen_console", "xen_net"],
        "keys": ["xen-boot"],
        "targets": ["xen"],
    }
    impls = {name: r.value for name, r in registry.impls.items()}
    assert impls["xen_console"].provides == "console"
    assert impls["xen_block"].provides == "block"
    assert impls["xen_net"].provides == "network"
    for name in ("xen_console", "xen_block", "xen_net"):
        impl = impls[name]
        assert [a.name for a in impl.runtime_args] == ["xenstore", "xen-sim", "xen-domid"]
        assert [p.name for p in impl.params] == ["devid"]
        assert impl.requires == ("mirage-xen>=0.1,<1",)
        module, _, attr = impl.factory.partition(":")
        assert callable(getattr(getattr(importlib.import_module(module), attr), "connect"))


def test_console_script() -> None:
    (ep,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "mirage-xenstored"]
    assert ep.value == "mirage.xen.xenstore._daemon:main"
    out = subprocess.run(
        [sys.executable, "-c", "from mirage.xen.xenstore._daemon import main; main(['--help'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--socket" in out.stdout


def test_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, mirage.xen._plugin;"
        " print(sorted(m for m in sys.modules if m.startswith('mirage')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = set(eval(out.stdout))
    assert {m for m in loaded if m.startswith("mirage.xen")} == {"mirage.xen", "mirage.xen._plugin"}
