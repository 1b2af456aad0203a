from importlib.metadata import entry_points

from mirage.core import _builtin
from mirage.core.plugins import load_registry


def test_core_entry_point_loads_and_registers_its_builtins() -> None:
    (ep,) = [e for e in entry_points(group="mirage") if e.name == "core"]
    assert ep.dist is not None and ep.dist.name == "mirage-core"
    registry = load_registry(entrypoints=False, plugins=[("core", ep.load())])
    assert not registry.failures
    assert set(registry.module_types) == {m.name for m in _builtin.MODULE_TYPES}
    assert set(registry.keys) == {"net", "target"}
    assert not registry.impls and not registry.targets


def test_core_registers_through_the_entry_point_group_only() -> None:
    registry = load_registry()
    core = [p for p in registry.plugins if p.name == "core"]
    assert core and core[0].dist == "mirage-core"
    assert registry.module_types["kv_rw"].plugin == core[0]
