"""Devices for core's own tests: they record what happens to them.

Kept apart from the fakes plugin, as real packages keep devices apart from their
plugin module: an artifact carries the devices, never the declarations."""

from __future__ import annotations

from typing import Any, ClassVar


class Recorder:
    """Devices append ``connect <name>`` and ``disconnect <name>`` lines to a file
    named by the environment variable FAKES_LOG (or print them)."""

    name: ClassVar[str] = "device"

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    @classmethod
    async def connect(cls, **kwargs: Any) -> Recorder:
        _log(f"connect {cls.name} {sorted(kwargs)}")
        return cls(**kwargs)

    async def disconnect(self) -> None:
        _log(f"disconnect {self.name}")


def _log(line: str) -> None:
    import os

    path = os.environ.get("FAKES_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")
    else:
        print(line)


class Console(Recorder):
    name = "console"

    async def log(self, line: str) -> None:
        print(line, flush=True)


class Clock(Recorder):
    name = "clock"


class Stack(Recorder):
    name = "stack"


class Store(Recorder):
    name = "store"


class Broken(Recorder):
    name = "broken"

    @classmethod
    async def connect(cls, **kwargs: Any) -> Recorder:
        raise OSError("no such device")
