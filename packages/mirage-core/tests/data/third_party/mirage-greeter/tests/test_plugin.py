from importlib.metadata import entry_points
from typing import cast

from mirage_greeter.friendly import FriendlyGreeter
from mirage_greeter.testing import GreeterTests

from mirage.core.plugins import load_registry
from mirage.core.testing import async_test
from mirage.core.types import Console


def test_entry_point_registers_the_greeter() -> None:
    (ep,) = entry_points(group="mirage", name="greeter")
    assert ep.value == "mirage_greeter.plugin"
    registry = load_registry()
    assert registry.failures == []
    (info,) = [p for p in registry.plugins if p.name == "greeter"]
    assert (info.dist, info.version) == ("mirage-greeter", "1.0.0")
    assert registry.registered_by(info) == {
        "module types": ["greeter"],
        "impls": ["friendly_greeter"],
    }
    assert registry.impls_for("greeter") == ["friendly_greeter"]


class RecordingConsole:
    """Just enough of a console for the greeter, which only logs."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    async def log(self, line: str) -> None:
        self.lines.append(line)


class TestFriendlyGreeter(GreeterTests):
    async def make_greeter(self) -> FriendlyGreeter:
        self.console = RecordingConsole()
        return await FriendlyGreeter.connect(
            console=cast(Console, self.console), greeting="Hi", punctuation="."
        )

    @async_test
    async def test_greets_on_its_console(self) -> None:
        greeter = await self.make_greeter()
        assert await greeter.greet("Ada") == "Hi, Ada."
        assert self.console.lines == ["Hi, Ada."]
        await greeter.disconnect()
