"""What a generated ``main.py`` runs on: argument parsing, logging, devices, signals.

Kept small and free of the tool's own modules: every artifact carries it.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]
import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = ["DeviceError", "connect", "main"]

log = logging.getLogger("mirage")

_TYPES: dict[str, Callable[[str], Any]] = {"str": str, "path": str, "int": int, "float": float}
_LEVELS = ("debug", "info", "warning", "error", "critical")


class DeviceError(Exception):
    """A device failed to connect."""


def _parser(name: str, doc: str, args: Sequence[dict[str, Any]]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=name, description=doc, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--logs",
        default="info",
        metavar="LEVEL",
        help="log level (debug, info, warning, error), or NAME:LEVEL,... per logger",
    )
    for arg in args:
        flag = f"--{arg['name']}"
        dest = "arg_" + arg["name"].replace("-", "_")
        help_text = arg.get("doc") or " "
        if arg["type"] == "bool":
            parser.add_argument(
                flag,
                dest=dest,
                action=argparse.BooleanOptionalAction,
                default=None if arg["required"] else bool(arg["default"]),
                required=arg["required"],
                help=help_text,
            )
            continue
        kwargs: dict[str, Any] = {"dest": dest, "type": _TYPES[arg["type"]], "help": help_text}
        if arg["required"]:
            kwargs["required"] = True
        else:
            kwargs["default"] = arg["default"]
        parser.add_argument(flag, metavar=arg["type"].upper(), **kwargs)
    return parser


def _setup_logging(spec: str, parser: argparse.ArgumentParser) -> None:
    root_level = logging.INFO
    levels: dict[str, int] = {}
    for part in filter(None, spec.split(",")):
        name, _, level = part.rpartition(":")
        if level.lower() not in _LEVELS:
            parser.error(f"argument --logs: unknown level {level!r}")
        value = getattr(logging, level.upper())
        if name:
            levels[name] = value
        else:
            root_level = value
    logging.basicConfig(
        level=root_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


async def connect(
    stack: contextlib.AsyncExitStack, device_id: str, factory: Any, kwargs: dict[str, Any]
) -> Any:
    """Connect one device and schedule its disconnection (in reverse order)."""
    try:
        device = await factory.connect(**kwargs)
    except Exception as exc:
        raise DeviceError(f"device {device_id!r} failed to connect: {exc}") from exc
    disconnect = getattr(device, "disconnect", None)
    if disconnect is not None:
        stack.push_async_callback(disconnect)
    log.debug("connected %s", device_id)
    return device


Start = Callable[[argparse.Namespace, contextlib.AsyncExitStack], Awaitable[None]]


async def _supervise(start: Start, args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    stopped: list[str] = []

    def stop(signum: int) -> None:
        stopped.append(signal.Signals(signum).name)
        task.cancel()

    def on_signal(signum: int, _frame: object) -> None:
        loop.call_soon_threadsafe(stop, signum)

    # Not loop.add_signal_handler: its check of the callback runs inspect (with ast
    # and dis), which a VM image otherwise defers for good. Nor signal.signal: it
    # turns the handler it replaces into an enum if it can, and the failed attempt
    # formats asyncio.run's SIGINT handler, whose task's repr runs inspect too. The
    # handler runs in this thread once the loop's wait is interrupted, and wakes the
    # loop through its self-pipe.
    previous: dict[int, Any] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            previous[signum] = _signal.signal(signum, on_signal)
    try:
        async with contextlib.AsyncExitStack() as stack:
            await start(args, stack)
    except asyncio.CancelledError:
        if not stopped:
            raise
        log.info("stopped by %s", stopped[0])
        return 0
    except DeviceError as exc:
        log.error("%s", exc)
        return 1
    finally:
        for number, handler in previous.items():
            # None: a handler not set from Python, which cannot be put back.
            _signal.signal(number, signal.SIG_DFL if handler is None else handler)
    return 0


def main(
    name: str,
    doc: str,
    args: Sequence[dict[str, Any]],
    start: Start,
    argv: Sequence[str] | None = None,
) -> int:
    """Parse ``argv``, set up logging, run ``start`` until it ends or a signal comes."""
    parser = _parser(name, doc, args)
    namespace = parser.parse_args(argv)
    _setup_logging(namespace.logs, parser)
    try:
        return asyncio.run(_supervise(start, namespace))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if _broken_pipe(exc):
            # Whoever read our output (``| head``) has gone: stop quietly, as cat does.
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 128 + signal.SIGPIPE
        log.exception("%s stopped on an error", name)
        return 1


def _broken_pipe(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, BrokenPipeError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False
