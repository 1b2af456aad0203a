"""What a parsed script is: events with time windows, segment patterns, calls."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Call", "Event", "OptSpec", "Script", "ScriptError", "SegSpec"]

CALLS = {
    "listen": (0, 2),
    "accept": (0, 0),
    "connect": (0, 0),
    "write": (1, 1),
    "read": (1, 1),
    "shutdown": (0, 0),
    "close": (0, 0),
    "abort": (0, 0),
    "nodelay": (0, 0),
    "keepalive": (3, 3),
    "state": (1, 1),
    "checksum_errors": (1, 1),
}
"""Application calls and their (least, most) argument counts."""


class ScriptError(Exception):
    """A script that cannot be parsed, or a run that did not go as the script says."""

    def __init__(self, where: str, line: int, why: str) -> None:
        super().__init__(f"{where}:{line}: {why}")
        self.where = where
        self.line = line
        self.why = why


@dataclass(frozen=True, slots=True)
class OptSpec:
    """One TCP option: ``kind`` is mss, wscale, sackOK, TS, sack, nop or eol;
    ``values`` are its numbers, ``None`` where the script wrote ``*``."""

    kind: str
    values: tuple[int | None, ...] = ()


@dataclass(frozen=True, slots=True)
class SegSpec:
    """A segment line of a script: direction, flags, sequence range, and what to send or check."""

    inbound: bool
    flags: int
    seq: int
    end: int
    ack: int | None = None
    win: int | None = None
    """Window field; ``None`` is the default (inbound) or any (outbound)."""
    options: tuple[OptSpec, ...] | None = None
    """``None``: no options (inbound) or not checked (outbound)."""
    via: int = 0
    """Which scripted peer: remote port offset from the script's first one."""
    bad_checksum: bool = False
    """Inbound only (``csum bad``): sent with its TCP checksum spoiled."""

    @property
    def length(self) -> int:
        return self.end - self.seq


@dataclass(frozen=True, slots=True)
class Call:
    """An application call of a script: its name and arguments."""

    name: str
    args: tuple[str, ...] = ()
    via: int = 0


@dataclass(frozen=True, slots=True)
class Event:
    """A line of a script: its time window and either a segment or a call."""

    line: int
    lo: float
    hi: float
    relative: bool
    only: str | None
    """``"ours"`` or ``"kernel"``: the line holds for that back-end alone."""
    segment: SegSpec | None = None
    call: Call | None = None


@dataclass(frozen=True, slots=True)
class Script:
    """A parsed script: its events, stack and kernel settings, and address family."""

    name: str
    events: tuple[Event, ...]
    config: dict[str, str] = field(default_factory=dict)
    """``config name=value`` lines: TcpConfig fields for the in-process back-end."""
    sysctl: dict[str, str] = field(default_factory=dict)
    """``sysctl name=value`` lines: kernel settings inside the namespace."""
    ipv6: bool = False
    """An ``ipv6`` line: the script runs over IPv6 (the stack's MSS is then 1440)."""
