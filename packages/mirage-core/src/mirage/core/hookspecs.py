"""Hook specifications: the contract between mirage-core and its plugins.

A plugin is a module named by an entry point in the group ``mirage``. It implements
some of these hooks with :data:`hookimpl`; each hook receives the registry and adds
declarations to it. The registry checks every declaration and fails with a message
that names the plugin. Declarations are data (factories are import paths), so a
plugin module must import nothing heavy: ``mirage plugins`` loads every plugin.

Hooks are called in this order over all plugins: module types, keys, implementations,
targets; so an implementation may provide a module type that another plugin
declares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from ._registry import Registry

__all__ = ["PROJECT", "hookimpl", "hookspec"]

PROJECT = "mirage"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -------------------------------------------------------------------------------------
# Declarations


@hookspec
def mirage_register_module_types(registry: Registry) -> None:
    """Add module types with ``registry.add_module_type(ModuleType(...))``.

    Core declares the interfaces of :mod:`mirage.core.types`; a third-party plugin may
    add a new interface here. Must return ``None``.
    """


@hookspec
def mirage_register_keys(registry: Registry) -> None:
    """Add configure-time keys with ``registry.add_key(Key(...))``.

    A key may be declared by several plugins only if the declarations are equal.
    Must return ``None``.
    """


@hookspec
def mirage_register_impls(registry: Registry) -> None:
    """Add implementations with ``registry.add_impl(Impl(...))``.

    Names are unique across all plugins; the module type must be registered by some
    plugin. Must return ``None``.
    """


@hookspec
def mirage_register_targets(registry: Registry) -> None:
    """Add targets with ``registry.add_target(Target(...))``. Must return ``None``."""
