"""Conformance tests of the ``greeter`` module type: every greeter subclasses them."""

from __future__ import annotations

from mirage.core.testing import AsyncTests, async_test, disconnect
from mirage_greeter.types import Greeter


class GreeterTests(AsyncTests):
    """Subclass and implement :meth:`make_greeter` to check a greeter."""

    async def make_greeter(self) -> Greeter:
        """A connected greeter; the kit disconnects it."""
        raise NotImplementedError

    @async_test
    async def test_is_a_greeter(self) -> None:
        greeter = await self.make_greeter()
        try:
            assert isinstance(greeter, Greeter)
        finally:
            await disconnect(greeter)

    @async_test
    async def test_greeting_names_the_person(self) -> None:
        greeter = await self.make_greeter()
        try:
            words = await greeter.greet("Ada")
            assert "Ada" in words
        finally:
            await disconnect(greeter)
