"""The hello unikernel."""

from mirage.core.types import Console, Sleep


async def start(console: Console, sleep: Sleep, hello: str, count: int, delay_ms: int) -> None:
    for i in range(count):
        if i:
            await sleep.sleep_ns(delay_ms * 1_000_000)
        await console.log(hello)
