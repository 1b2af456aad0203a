"""The greet unikernel."""

from mirage_greeter.types import Greeter


async def start(greeter: Greeter, name: str) -> None:
    await greeter.greet(name)
