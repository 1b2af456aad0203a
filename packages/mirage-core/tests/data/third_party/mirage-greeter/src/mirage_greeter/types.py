"""The ``greeter`` module type."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Greeter(Protocol):
    """Something that greets people."""

    async def greet(self, name: str) -> str:
        """Greet ``name``; return the words used."""
        ...
