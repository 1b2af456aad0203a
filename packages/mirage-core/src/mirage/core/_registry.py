"""The registry: what every loaded plugin declared, checked as it is added.

Each declaration remembers its provenance (plugin name, distribution, version) so
that errors and ``mirage plugins`` can name them.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from ._errors import RegistrationError
from ._model import Impl, Key, ModuleType, Target

__all__ = ["PluginFailure", "PluginInfo", "Registered", "Registry"]

T = TypeVar("T")


class PluginInfo:
    """A loaded plugin: entry-point name and the distribution that ships it.

    (Records here are plain classes, not dataclasses: see :class:`mirage.core.dsl._Data`.)
    """

    __slots__ = ("dist", "name", "version")

    def __init__(self, name: str, dist: str = "", version: str = "") -> None:
        self.name = name
        self.dist = dist
        self.version = version

    def _key(self) -> tuple[str, str, str]:
        return (self.name, self.dist, self.version)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PluginInfo) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"PluginInfo(name={self.name!r}, dist={self.dist!r}, version={self.version!r})"

    def describe(self) -> str:
        if self.dist:
            return f"plugin {self.name!r} (from {self.dist} {self.version})"
        return f"plugin {self.name!r}"


class PluginFailure:
    """A plugin that could not be loaded or whose hooks failed."""

    __slots__ = ("error", "plugin")

    def __init__(self, plugin: PluginInfo, error: str) -> None:
        self.plugin = plugin
        self.error = error

    def __repr__(self) -> str:
        return f"PluginFailure({self.plugin!r}, {self.error!r})"


class Registered(Generic[T]):
    """A declaration and the plugin that made it."""

    __slots__ = ("plugin", "value")

    def __init__(self, value: T, plugin: PluginInfo) -> None:
        self.value = value
        self.plugin = plugin


class Registry:
    """Module types, keys, implementations and targets by name, checked as added."""

    def __init__(self) -> None:
        self.module_types: dict[str, Registered[ModuleType]] = {}
        self.keys: dict[str, Registered[Key]] = {}
        self.impls: dict[str, Registered[Impl]] = {}
        self.targets: dict[str, Registered[Target]] = {}
        self.plugins: list[PluginInfo] = []
        self.failures: list[PluginFailure] = []
        self.current = PluginInfo("<direct>")

    def _fail(self, message: str) -> RegistrationError:
        return RegistrationError(f"{self.current.describe()}: {message}")

    def add_module_type(self, module_type: ModuleType) -> None:
        if not isinstance(module_type, ModuleType):
            raise self._fail(f"add_module_type expects a ModuleType, not {module_type!r}")
        old = self.module_types.get(module_type.name)
        if old is not None and old.value != module_type:
            raise self._fail(
                f"module type {module_type.name!r} is already declared differently"
                f" by {old.plugin.describe()}"
            )
        self.module_types.setdefault(module_type.name, Registered(module_type, self.current))

    def add_key(self, key: Key) -> None:
        if not isinstance(key, Key):
            raise self._fail(f"add_key expects a Key, not {key!r}")
        old = self.keys.get(key.name)
        if old is not None and old.value != key:
            raise self._fail(
                f"key --{key.name} is already declared differently by {old.plugin.describe()}"
            )
        self.keys.setdefault(key.name, Registered(key, self.current))

    def add_impl(self, impl: Impl) -> None:
        if not isinstance(impl, Impl):
            raise self._fail(f"add_impl expects an Impl, not {impl!r}")
        old = self.impls.get(impl.name)
        if old is not None:
            raise self._fail(
                f"implementation {impl.name!r} is already registered by {old.plugin.describe()}"
            )
        for module_type in (impl.provides, *impl.needs.values()):
            if module_type not in self.module_types:
                raise self._fail(
                    f"implementation {impl.name!r} uses the unknown module type"
                    f" {module_type!r}; known: {', '.join(sorted(self.module_types))}"
                )
        self.impls[impl.name] = Registered(impl, self.current)

    def add_target(self, target: Target) -> None:
        if not isinstance(target, Target):
            raise self._fail(f"add_target expects a Target, not {target!r}")
        old = self.targets.get(target.name)
        if old is not None:
            raise self._fail(
                f"target {target.name!r} is already registered by {old.plugin.describe()}"
            )
        for module_type in target.defaults:
            if module_type not in self.module_types:
                raise self._fail(
                    f"target {target.name!r} has a default for the unknown module type"
                    f" {module_type!r}"
                )
        self.targets[target.name] = Registered(target, self.current)

    # --- queries -------------------------------------------------------------------

    def is_a(self, module_type: str, wanted: str) -> bool:
        """Whether a device of ``module_type`` can serve where ``wanted`` is needed
        (``"*"``: anything)."""
        if wanted == "*":
            return True
        seen: set[str] = set()
        todo = [module_type]
        while todo:
            current = todo.pop()
            if current == wanted:
                return True
            if current in seen or current not in self.module_types:
                continue
            seen.add(current)
            todo.extend(self.module_types[current].value.extends)
        return False

    def impls_for(self, module_type: str) -> list[str]:
        return sorted(n for n, r in self.impls.items() if self.is_a(r.value.provides, module_type))

    def registered_by(self, plugin: PluginInfo) -> dict[str, list[str]]:
        what: dict[str, list[str]] = {}
        for kind, table in (
            ("module types", self.module_types),
            ("keys", self.keys),
            ("impls", self.impls),
            ("targets", self.targets),
        ):
            names = sorted(n for n, r in table.items() if r.plugin == plugin)
            if names:
                what[kind] = names
        return what
