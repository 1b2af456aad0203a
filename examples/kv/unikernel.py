"""The kv unikernel: walks the store and prints every value with its size and digest."""

from mirage.core.types import Console, KvKind, KvRo


async def start(console: Console, store: KvRo) -> None:
    async def walk(prefix: str) -> None:
        for name, kind in await store.list(prefix):
            key = f"{prefix}/{name}" if prefix else name
            if kind is KvKind.DICTIONARY:
                await console.log(f"{key}/")
                await walk(key)
                continue
            size = await store.size(key)
            digest = (await store.digest(key)).hex()[:16]
            await console.log(f"{key} {size} bytes {digest}")
            data = await store.get(key)
            for line in data.decode("utf-8", "replace").splitlines():
                await console.log(f"  | {line}")

    await walk("")
