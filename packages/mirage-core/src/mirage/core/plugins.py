"""Loading plugins from the ``mirage`` entry-point group into a :class:`Registry`.

Every plugin, core's own built-ins included, comes in through the entry-point group.
A plugin that fails to import, or whose hook raises, is recorded as a
:class:`PluginFailure` with its name and the error, its declarations are withdrawn,
and the other plugins load as usual. ``MIRAGE_DISABLE_PLUGINS`` (comma-separated
entry-point names) blocks plugins; ``MIRAGE_PLUGINS`` (comma-separated module names)
loads plugin modules that no distribution declares, as if they had entry points.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import pluggy

from . import hookspecs
from ._entrypoints import find_entry_points
from ._errors import MirageError
from ._registry import PluginFailure, PluginInfo, Registry

__all__ = ["HOOK_ORDER", "get_plugin_manager", "import_object", "load_registry"]

GROUP = "mirage"
HOOK_ORDER = (
    "mirage_register_module_types",
    "mirage_register_keys",
    "mirage_register_impls",
    "mirage_register_targets",
)


def get_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def _blocked() -> set[str]:
    return {n.strip() for n in os.environ.get("MIRAGE_DISABLE_PLUGINS", "").split(",") if n}


def load_registry(
    *, entrypoints: bool = True, plugins: Iterable[tuple[str, object]] = ()
) -> Registry:
    """Load the plugins of the entry-point group (unless ``entrypoints`` is false) and
    the given ``(name, module_or_object)`` pairs, and run their hooks into a registry."""
    pm = get_plugin_manager()
    registry = Registry()
    infos: dict[str, PluginInfo] = {}
    blocked = _blocked()

    def add(info: PluginInfo, plugin: object) -> None:
        try:
            pm.register(plugin, name=info.name)
        except Exception as exc:
            registry.failures.append(PluginFailure(info, f"{type(exc).__name__}: {exc}"))
            return
        for caller in pm.get_hookcallers(plugin) or ():
            if caller.spec is None:
                pm.unregister(plugin)
                registry.failures.append(
                    PluginFailure(info, f"implements {caller.name}, which is not a mirage hook")
                )
                return
        infos[info.name] = info
        registry.plugins.append(info)

    if entrypoints:
        seen: set[str] = set()
        for ep in sorted(find_entry_points(GROUP), key=lambda e: e.name):
            info = PluginInfo(ep.name, ep.dist, ep.version)
            if ep.name in seen or ep.name in blocked:
                continue
            seen.add(ep.name)
            try:
                module = ep.load()
            except Exception as exc:
                registry.failures.append(PluginFailure(info, f"{type(exc).__name__}: {exc}"))
                continue
            add(info, module)
    from importlib import import_module

    extra = os.environ.get("MIRAGE_PLUGINS", "").split(",")
    for module_name in filter(None, (name.strip() for name in extra)):
        info = PluginInfo(module_name)
        if module_name in blocked or module_name in infos:
            continue
        try:
            module = import_module(module_name)
        except Exception as exc:
            registry.failures.append(PluginFailure(info, f"{type(exc).__name__}: {exc}"))
            continue
        add(info, module)
    for name, plugin in plugins:
        if name not in blocked and name not in infos:
            add(PluginInfo(name), plugin)

    for hook_name in HOOK_ORDER:
        caller = getattr(pm.hook, hook_name)
        for hook_impl in reversed(caller.get_hookimpls()):
            found = infos.get(hook_impl.plugin_name)
            if found is None or found not in registry.plugins:
                continue
            info = found
            registry.current = info
            try:
                result: Any = hook_impl.function(registry=registry)
                if result is not None:
                    raise MirageError(f"{hook_name} returned {result!r}; it must return None")
            except Exception as exc:
                registry.failures.append(
                    PluginFailure(info, f"{hook_name} failed: {type(exc).__name__}: {exc}")
                )
                _withdraw(registry, info)
    registry.current = PluginInfo("<direct>")
    return registry


def _withdraw(registry: Registry, info: PluginInfo) -> None:
    """Remove everything a failed plugin declared, and the plugin itself."""
    for table in (registry.module_types, registry.keys, registry.impls, registry.targets):
        for name in [n for n, r in table.items() if r.plugin == info]:
            del table[name]
    if info in registry.plugins:
        registry.plugins.remove(info)


def import_object(path: str, what: str) -> Any:
    """Import ``module:attribute`` (a factory, a build step, a target's builder)."""
    from importlib import import_module

    module_name, _, attr = path.partition(":")
    try:
        obj: Any = import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise MirageError(
            f"cannot import {path} ({what}): {type(exc).__name__}: {exc}",
            hint="is the plugin that declares it installed completely?",
        ) from None
    return obj
