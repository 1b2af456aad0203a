"""Declarations that plugins register and configurations use.

A :class:`ModuleType` names an interface of :mod:`mirage.core.types`. An :class:`Impl`
declares one implementation of a module type: which interfaces it needs, its
configure-time parameters, its runtime arguments and the import path of its factory.
Nothing here imports an implementation: factories are strings, so listing every
plugin stays cheap. A :class:`Target` names a platform, its default implementation of
each module type, and how artifacts are built and run there.

A :class:`Key` is a configure-time option (it changes which implementations are
chosen); a :class:`RuntimeArg` is an option of the built artifact (it becomes a
parameter of ``connect`` and appears in the artifact's ``--help``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar, dataclass_transform

from ._errors import ConfigError

if TYPE_CHECKING:
    from .dsl import Node

__all__ = [
    "REQUIRED",
    "Impl",
    "Key",
    "ModuleType",
    "Param",
    "RuntimeArg",
    "Target",
    "TYPES",
    "convert_value",
]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Final = _Required()
"""Default of a parameter or argument that has none: the user must give it."""

_EMPTY: Mapping[str, Any] = {}

TYPES: Final = ("str", "int", "float", "bool", "path")
"""Names of the value types of keys, parameters and runtime arguments."""

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}

C = TypeVar("C", bound=type)


@dataclass_transform(frozen_default=True)
def record(cls: C) -> C:
    """A frozen record class, like ``@dataclass(frozen=True)``.

    Declarations are made while ``mirage plugins`` loads every plugin; a dataclass costs
    a fraction of a millisecond to create, this costs next to nothing. Fields are the
    class's annotations, in order; a class attribute is the field's default (use an
    immutable one, and let ``__post_init__`` copy or convert).
    """
    fields = tuple(cls.__dict__.get("__annotations__", {}))  # noqa: RUF063 (names only)
    defaults = {name: cls.__dict__[name] for name in fields if name in cls.__dict__}
    name_of = cls.__name__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(fields):
            raise TypeError(f"{name_of}() takes {len(fields)} arguments, {len(args)} given")
        values = dict(zip(fields, args, strict=False))
        for key, value in kwargs.items():
            if key not in fields:
                raise TypeError(f"{name_of}() got an unexpected argument {key!r}")
            if key in values:
                raise TypeError(f"{name_of}() got {key!r} twice")
            values[key] = value
        for field_name in fields:
            if field_name not in values:
                if field_name not in defaults:
                    raise TypeError(f"{name_of}() is missing the argument {field_name!r}")
                values[field_name] = defaults[field_name]
            object.__setattr__(self, field_name, values[field_name])
        post = getattr(self, "__post_init__", None)
        if post is not None:
            post()

    def _values(self: Any) -> tuple[Any, ...]:
        return tuple(getattr(self, f) for f in fields)

    def __eq__(self: Any, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return bool(_values(self) == _values(other))

    def __hash__(self: Any) -> int:
        return hash(tuple(_freeze(v) for v in _values(self)))

    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{f}={getattr(self, f)!r}" for f in fields)
        return f"{name_of}({shown})"

    def __setattr__(self: Any, key: str, value: Any) -> None:
        raise AttributeError(f"{name_of} is frozen: cannot set {key!r}")

    cls.__init__ = __init__  # type: ignore[misc]
    cls.__eq__ = __eq__  # type: ignore[assignment,method-assign]
    if "__hash__" not in cls.__dict__ or cls.__dict__["__hash__"] is None:
        cls.__hash__ = __hash__  # type: ignore[assignment,method-assign]
    cls.__repr__ = __repr__  # type: ignore[assignment,method-assign]
    cls.__setattr__ = __setattr__  # type: ignore[assignment,method-assign]
    setattr(cls, "__match_args__", fields)  # noqa: B010
    return cls


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def convert_value(type_: str, raw: object, what: str) -> Any:
    """Convert ``raw`` (usually a command-line string) to ``type_``.

    Raises :class:`ConfigError` naming ``what`` (a key or parameter) if it does not fit.
    """
    if raw is None:
        return None
    try:
        if type_ in ("str", "path"):
            if not isinstance(raw, str):
                raise TypeError
            return raw
        if type_ == "bool":
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.lower() in _TRUE | _FALSE:
                return raw.lower() in _TRUE
            raise ValueError
        if type_ == "int":
            if isinstance(raw, bool):
                raise TypeError
            return int(raw)  # type: ignore[call-overload]
        if type_ == "float":
            if isinstance(raw, bool):
                raise TypeError
            return float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(
            f"{what} expects a value of type {type_}, not {raw!r}",
            hint="true/false, yes/no or 1/0" if type_ == "bool" else None,
        ) from None
    raise ConfigError(f"{what} has an unknown type {type_!r}; use one of {', '.join(TYPES)}")


def check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{kind} name {name!r} must be lower-case letters, digits, '-' or '_',"
            " starting with a letter"
        )


def check_factory(factory: str) -> None:
    if not isinstance(factory, str) or not _FACTORY.match(factory):
        raise ValueError(f"factory {factory!r} must be an import path 'package.module:Name'")


@record
class ModuleType:
    """An interface: ``protocol`` is the import path of its ``typing.Protocol``.

    ``extends`` names module types it is also usable as (a ``kv_rw`` is a ``kv_ro``).
    """

    name: str
    protocol: str
    doc: str = ""
    extends: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_name("module type", self.name)
        check_factory(self.protocol)


@record
class Key:
    """A configure-time option, given as ``mirage configure --NAME VALUE``."""

    name: str
    type: str = "str"
    default: Any = None
    doc: str = ""
    choices: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        check_name("key", self.name)
        if self.type not in TYPES:
            raise ValueError(f"key {self.name!r}: unknown type {self.type!r}")

    def parse(self, raw: object) -> Any:
        value = convert_value(self.type, raw, f"key --{self.name}")
        if self.choices is not None and value not in self.choices:
            choices = ", ".join(map(str, self.choices))
            raise ConfigError(
                f"key --{self.name} does not accept {raw!r}", hint=f"choose one of: {choices}"
            )
        return value

    # Conditions for if_impl / match_impl.
    def eq(self, value: object) -> KeyCond:
        return KeyCond(self, "eq", (value,))

    def ne(self, value: object) -> KeyCond:
        return KeyCond(self, "ne", (value,))

    def is_in(self, *values: object) -> KeyCond:
        return KeyCond(self, "in", values)


@record
class KeyCond:
    key: Key
    op: str
    values: tuple[Any, ...]

    def evaluate(self, value: object) -> bool:
        if self.op == "eq":
            return bool(value == self.values[0])
        if self.op == "ne":
            return bool(value != self.values[0])
        return value in self.values

    def describe(self) -> str:
        if self.op == "in":
            return f"{self.key.name} in {list(self.values)!r}"
        return f"{self.key.name} {'==' if self.op == 'eq' else '!='} {self.values[0]!r}"


@record
class Param:
    """A configure-time parameter of an implementation (``impl("directory", root=...)``)."""

    name: str
    type: str = "str"
    default: Any = REQUIRED
    doc: str = ""

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"parameter {self.name!r}: unknown type {self.type!r}")


@record
class RuntimeArg:
    """An option of the built artifact, passed to ``connect`` (or the job) as ``dest``.

    ``name`` is the command-line name without dashes (``ipv4`` gives ``--ipv4``).
    """

    name: str
    type: str = "str"
    default: Any = REQUIRED
    doc: str = ""
    dest: str = ""

    def __post_init__(self) -> None:
        check_name("runtime argument", self.name)
        if self.type not in TYPES:
            raise ValueError(f"runtime argument {self.name!r}: unknown type {self.type!r}")
        if not self.dest:
            object.__setattr__(self, "dest", self.name.replace("-", "_"))

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "default": None if self.required else self.default,
            "required": self.required,
            "doc": self.doc,
            "dest": self.dest,
        }


@record
class Impl:
    """One implementation of a module type.

    - ``factory``: import path of a class with ``async connect(**kwargs)``; it receives
      each need by name, each parameter and each runtime argument by ``dest``.
    - ``needs``: parameter name -> module type, resolved by the target's defaults
      unless the configuration names an implementation.
    - ``requires``: distributions (PEP 508) the artifact needs at run time.
    - ``targets``: the targets it runs on (``None``: any).
    - ``build``: import path of ``fn(ctx) -> dict[str, str]`` run by ``mirage build``
      before sealing; it may write modules into ``ctx.gen_dir`` and returns extra
      ``connect`` arguments as ``{"kwarg": "module:attribute"}``.
    """

    name: str
    provides: str
    factory: str
    needs: Mapping[str, str] = _EMPTY
    params: Sequence[Param] = ()
    runtime_args: Sequence[RuntimeArg] = ()
    requires: Sequence[str] = ()
    targets: Sequence[str] | None = None
    build: str | None = None
    doc: str = ""

    def __post_init__(self) -> None:
        check_name("implementation", self.name)
        check_factory(self.factory)
        if self.build is not None:
            check_factory(self.build)
        object.__setattr__(self, "needs", dict(self.needs))
        object.__setattr__(self, "params", tuple(self.params))
        object.__setattr__(self, "runtime_args", tuple(self.runtime_args))
        object.__setattr__(self, "requires", tuple(self.requires))
        if self.targets is not None:
            object.__setattr__(self, "targets", tuple(self.targets))
        names = [p.name for p in self.params] + [a.dest for a in self.runtime_args]
        names += list(self.needs)
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(
                f"implementation {self.name!r} uses the names {sorted(duplicates)} twice"
                " among its needs, parameters and runtime arguments"
            )

    def __hash__(self) -> int:
        return hash((self.name, self.provides, self.factory))


@record
class Target:
    """A platform.

    - ``defaults``: module type -> the node chosen when a configuration asks for
      ``default(module_type)`` (an ``impl(...)`` or a key-dependent choice).
    - ``builder``: import path of ``fn(plan, project_dir) -> list[Path]`` that seals
      the artifact; ``runner``: ``fn(plan, project_dir, argv) -> int`` that runs it.
    - ``requires``: distributions every artifact of this target needs.
    """

    name: str
    builder: str
    runner: str
    defaults: Mapping[str, Node] = _EMPTY
    requires: Sequence[str] = ()
    doc: str = ""

    def __post_init__(self) -> None:
        check_name("target", self.name)
        check_factory(self.builder)
        check_factory(self.runner)
        object.__setattr__(self, "defaults", dict(self.defaults))
        object.__setattr__(self, "requires", tuple(self.requires))

    def __hash__(self) -> int:
        return hash(self.name)
