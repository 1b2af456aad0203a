"""``friendly_greeter``: a greeter that greets on a console."""

from __future__ import annotations

from mirage.core.types import Console


class FriendlyGreeter:
    def __init__(self, console: Console, greeting: str, punctuation: str) -> None:
        self._console = console
        self._greeting = greeting
        self._punctuation = punctuation

    @classmethod
    async def connect(
        cls, *, console: Console, greeting: str = "Hello", punctuation: str = "!"
    ) -> FriendlyGreeter:
        return cls(console, greeting, punctuation)

    async def disconnect(self) -> None:
        pass  # the console is not ours to close

    async def greet(self, name: str) -> str:
        words = f"{self._greeting}, {name}{self._punctuation}"
        await self._console.log(words)
        return words
