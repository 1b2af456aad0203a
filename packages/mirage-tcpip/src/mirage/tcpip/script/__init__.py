"""A packetdrill-style script runner: scripts of inbound segments, expected
outbound segments and application calls with relative times, run against our TCP
core on a virtual clock (:class:`CoreBackend`) or against the Linux kernel over a
TAP device in a network namespace (:class:`KernelBackend`).

The language is described in :mod:`mirage.tcpip.script._parse`.
"""

from __future__ import annotations

from ._core import CoreBackend
from ._model import Call, Event, OptSpec, Script, ScriptError, SegSpec
from ._parse import parse, parse_file
from ._run import Backend, RunResult, run_script

__all__ = [
    "Backend",
    "Call",
    "CoreBackend",
    "Event",
    "OptSpec",
    "RunResult",
    "Script",
    "ScriptError",
    "SegSpec",
    "parse",
    "parse_file",
    "run_script",
]
