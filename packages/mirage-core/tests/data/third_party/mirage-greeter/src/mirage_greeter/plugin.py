"""The plugin of mirage-greeter: declarations only, no device is imported here."""

from __future__ import annotations

from mirage.core import Impl, ModuleType, Param, Registry, RuntimeArg, hookimpl

GREETER = ModuleType(
    "greeter",
    protocol="mirage_greeter.types:Greeter",
    doc="something that greets people",
)

FRIENDLY_GREETER = Impl(
    "friendly_greeter",
    provides="greeter",
    factory="mirage_greeter.friendly:FriendlyGreeter",
    needs={"console": "console"},
    params=[Param("greeting", "str", default="Hello", doc="the word before the name")],
    runtime_args=[RuntimeArg("punctuation", "str", default="!", doc="what ends a greeting")],
    requires=["mirage-greeter>=1.0,<2"],
    doc="greets on the console",
)


@hookimpl
def mirage_register_module_types(registry: Registry) -> None:
    registry.add_module_type(GREETER)


@hookimpl
def mirage_register_impls(registry: Registry) -> None:
    registry.add_impl(FRIENDLY_GREETER)
