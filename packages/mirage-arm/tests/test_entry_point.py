"""The package's entry point loads into a fresh registry and registers what it says."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib.metadata import entry_points

import mirage.core._builtin
from mirage.core._registry import PluginInfo
from mirage.core.plugins import load_registry


def arm_entry_point() -> object:
    (ep,) = [ep for ep in entry_points(group="mirage") if ep.name == "arm"]
    assert ep.value == "mirage.arm._plugin"
    return ep.load()


def test_registers_its_targets_and_keys() -> None:
    registry = load_registry(
        entrypoints=False, plugins=[("core", mirage.core._builtin), ("arm", arm_entry_point())]
    )
    assert registry.failures == []
    assert registry.registered_by(PluginInfo("arm")) == {
        "keys": ["arm-timeout", "arm-xenstored", "board"],
        "targets": ["arm", "xen-arm64"],
    }
    assert registry.keys["board"].value.choices == (
        "virt-aarch64",
        "virt-armv7",
        "rpi4",
        "cubieboard2",
    )
    for name in ("arm", "xen-arm64"):
        target = registry.targets[name].value
        assert "mirage-arm>=0.1,<1" in target.requires
        assert set(target.defaults) == {
            *("console", "sleep", "clock", "random", "network", "stack", "block")
        }
        for path in (target.builder, target.runner):
            module, _, attr = path.partition(":")
            assert callable(getattr(importlib.import_module(module), attr)), path


def test_the_plugin_names_every_board_profile() -> None:
    from mirage.arm._boards import BOARDS
    from mirage.arm._plugin import BOARD_NAMES

    assert tuple(BOARDS) == BOARD_NAMES


def test_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, mirage.arm._plugin;"
        " print(sorted(m for m in sys.modules if m.startswith('mirage')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = set(eval(out.stdout))
    # The declarations only: no codec, no build code; of mirage-vm only its shared
    # guest defaults.
    assert {m for m in loaded if m.startswith(("mirage.arm", "mirage.vm"))} == {
        "mirage.arm",
        "mirage.arm._plugin",
        "mirage.vm",
        "mirage.vm.defaults",
    }
