from importlib.metadata import entry_points

from mirage.core import _builtin
from mirage.core.plugins import load_registry
from mirage.unix import _plugin


def test_unix_entry_point_registers_the_target_and_devices() -> None:
    (ep,) = [e for e in entry_points(group="mirage") if e.name == "unix"]
    assert ep.dist is not None and ep.dist.name == "mirage-unix"
    registry = load_registry(entrypoints=False, plugins=[("core", _builtin), ("unix", ep.load())])
    assert not registry.failures
    assert set(registry.impls) == {i.name for i in _plugin.IMPLS}
    assert set(registry.targets) == {"unix"}
    defaults = registry.targets["unix"].value.defaults
    assert set(defaults) == {"console", "sleep", "clock", "random", "resolver", "stack", "network"}


def test_every_factory_imports() -> None:
    from mirage.core.plugins import import_object

    for declaration in _plugin.IMPLS:
        factory = import_object(declaration.factory, declaration.name)
        assert callable(factory.connect)
