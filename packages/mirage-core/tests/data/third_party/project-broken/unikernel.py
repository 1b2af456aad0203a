"""The broken unikernel: never configured, since its greeter cannot be found."""

from typing import Any


async def start(greeter: Any) -> None:
    await greeter.greet("nobody")
