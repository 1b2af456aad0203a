"""mirage-core: the module types, the device model and the mirage tool.

This package is imported by every artifact (the generated ``main.py`` uses
:mod:`mirage.core.runtime`), so it imports nothing at start; the names below are
loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "REQUIRED",
    "BuildContext",
    "ConfigError",
    "Impl",
    "Key",
    "MirageError",
    "ModuleType",
    "Param",
    "RegistrationError",
    "Registry",
    "ResolutionError",
    "RuntimeArg",
    "Target",
    "hookimpl",
]

_WHERE = {
    "REQUIRED": "_model",
    "Impl": "_model",
    "Key": "_model",
    "ModuleType": "_model",
    "Param": "_model",
    "RuntimeArg": "_model",
    "Target": "_model",
    "ConfigError": "_errors",
    "MirageError": "_errors",
    "RegistrationError": "_errors",
    "ResolutionError": "_errors",
    "Registry": "_registry",
    "BuildContext": "build",
    "hookimpl": "hookspecs",
}

if TYPE_CHECKING:
    from ._errors import ConfigError, MirageError, RegistrationError, ResolutionError
    from ._model import REQUIRED, Impl, Key, ModuleType, Param, RuntimeArg, Target
    from ._registry import Registry
    from .build import BuildContext
    from .hookspecs import hookimpl


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("mirage-core")
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mirage.core' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"mirage.core.{module}"), name)
