"""The script language, one event a line (``#`` starts a comment):

    ipv6                          # run over IPv6 (default: IPv4)
    config rto_min=0.2            # a TcpConfig field for the in-process back-end
    sysctl net.ipv4.tcp_sack=0    # a kernel setting for the kernel back-end
    0      listen
    +0     < S 0:0(0) win 65535 <mss 1460,sackOK,nop,wscale 7>
    +0     > S. 0:0(0) ack 1 win * <mss 1460,sackOK,wscale *>
    +0.1   < . 1:1(0) ack 1 win 1024
    +0     accept
    +0     write 1000
    +0     > P. 1:1001(1000) ack 1
    +0~0.3 > . 1:1(0) ack 1001    # any time in the next 0.3 s
    [ours] +1 ...                 # a line for one back-end only (explain why)

Times: ``+a`` is relative to the previous event, ``a`` to the script's start;
``a~b`` is a window. Segments: ``<`` inbound (we inject), ``>`` outbound (the stack
under test must send it); flags from ``S F R P .`` (``.`` is ACK); ``start:end(len)``;
``ack N``, ``win N`` (``*`` any), ``via N`` (the N-th extra scripted peer), options in
``<...>``: ``mss N``, ``wscale N``, ``sackOK``, ``TS val N ecr N``, ``sack a:b c:d``,
``nop``, ``eol`` (``*`` for any value); ``csum bad`` (inbound) spoils the TCP
checksum of the segment injected. The stack's sequence numbers (outbound
``seq``, inbound ``ack`` and SACK blocks) count from its ISN, as packetdrill does.

Calls (all but listen and connect take a trailing ``via N``): listen [backlog N],
accept, connect, write N, read N | eof | error,
shutdown, close, abort (a reset), nodelay, keepalive IDLE INTERVAL COUNT, state NAME,
checksum_errors N (inbound segments dropped for a bad checksum since the start).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from mirage.tcpip.tcp import ACK, FIN, PSH, RST, SYN

from ._model import CALLS, Call, Event, OptSpec, Script, ScriptError, SegSpec

__all__ = ["parse", "parse_file"]

_Fail = Callable[[str], ScriptError]

_FLAGS = {"S": SYN, "F": FIN, "R": RST, "P": PSH, ".": ACK}
_SEQ = re.compile(r"^([0-9]{1,10}):([0-9]{1,10})\(([0-9]{1,10})\)$")
_TIME = re.compile(r"^(\+)?([0-9]{1,6}(?:\.[0-9]{1,6})?)(?:~([0-9]{1,6}(?:\.[0-9]{1,6})?))?$")
_NUMBER = re.compile(r"^[0-9]{1,10}$")
_STATES = {
    "CLOSED",
    "LISTEN",
    "SYN-SENT",
    "SYN-RECEIVED",
    "ESTABLISHED",
    "FIN-WAIT-1",
    "FIN-WAIT-2",
    "CLOSE-WAIT",
    "CLOSING",
    "LAST-ACK",
    "TIME-WAIT",
}
_MAX32 = 0xFFFFFFFF


def parse_file(path: str | Path) -> Script:
    p = Path(path)
    return parse(p.read_text(encoding="utf-8", errors="replace"), p.name)


def parse(text: str, name: str = "<script>") -> Script:
    events: list[Event] = []
    config: dict[str, str] = {}
    sysctl: dict[str, str] = {}
    ipv6 = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue

        def fail(why: str, number: int = number) -> ScriptError:
            return ScriptError(name, number, why)

        words = line.split()
        if words == ["ipv6"]:
            ipv6 = True
            continue
        if words[0] in ("config", "sysctl"):
            if len(words) != 2 or "=" not in words[1]:
                raise fail(f"{words[0]} takes one name=value")
            key, value = words[1].split("=", 1)
            if not key or not value:
                raise fail(f"{words[0]} takes one name=value")
            (config if words[0] == "config" else sysctl)[key] = value
            continue
        only = None
        if words[0].startswith("["):
            if words[0] not in ("[ours]", "[kernel]"):
                raise fail(f"unknown back-end tag {words[0]!r} (want [ours] or [kernel])")
            only = words[0][1:-1]
            words = words[1:]
            if not words:
                raise fail("a back-end tag without an event")
        m = _TIME.match(words[0])
        if m is None:
            raise fail(f"bad time {words[0][:20]!r} (want +0.1, 0.5 or +0~0.3)")
        lo = float(m.group(2))
        hi = float(m.group(3)) if m.group(3) is not None else lo
        if hi < lo:
            raise fail(f"time window {words[0]!r} ends before it starts")
        relative = m.group(1) is not None
        rest = line[line.index(words[0]) + len(words[0]) :].strip()
        if not rest:
            raise fail("a time without an event")
        if rest[0] in "<>":
            seg = _segment(rest[1:].strip(), rest[0] == "<", fail)
            events.append(Event(number, lo, hi, relative, only, segment=seg))
        else:
            events.append(Event(number, lo, hi, relative, only, call=_call(rest, fail)))
    if not events:
        raise ScriptError(name, 0, "no events")
    return Script(name, tuple(events), config, sysctl, ipv6)


def _int(text: str, what: str, fail: _Fail, limit: int = _MAX32) -> int:
    if not _NUMBER.match(text):
        raise fail(f"{what} {text[:20]!r} is not a number")
    value = int(text)
    if value > limit:
        raise fail(f"{what} {value} is larger than {limit}")
    return value


def _maybe(text: str, what: str, fail: _Fail, limit: int = _MAX32) -> int | None:
    return None if text == "*" else _int(text, what, fail, limit)


def _segment(text: str, inbound: bool, fail: _Fail) -> SegSpec:
    options: tuple[OptSpec, ...] | None = None
    if "<" in text:
        head, _, tail = text.partition("<")
        if not tail.endswith(">") or ">" in tail[:-1]:
            raise fail("options must be one <...> list at the end of the line")
        options = _options(tail[:-1], fail)
        text = head.strip()
    words = text.split()
    if len(words) < 2:
        raise fail("a segment needs flags and start:end(length)")
    flags = 0
    for ch in words[0]:
        if ch not in _FLAGS:
            raise fail(f"unknown flag {ch!r} in {words[0]!r} (flags are S F R P .)")
        flags |= _FLAGS[ch]
    m = _SEQ.match(words[1])
    if m is None:
        raise fail(f"bad sequence range {words[1]!r} (want start:end(length))")
    start, end, length = (int(g) for g in m.groups())
    if end - start != length or start > _MAX32 or end > _MAX32 + 1:
        raise fail(f"sequence range {words[1]!r}: end - start is not the length")
    ack: int | None = None
    win: int | None = None
    via = 0
    bad = False
    i = 2
    while i < len(words):
        key = words[i]
        if i + 1 >= len(words):
            raise fail(f"{key!r} without a value")
        value = words[i + 1]
        if key == "ack":
            ack = _int(value, "ack", fail)
        elif key == "win":
            win = _maybe(value, "window", fail, 0xFFFF)
            if win is None and inbound:
                raise fail("an inbound segment needs a window value, not *")
        elif key == "via":
            via = _int(value, "via", fail, 15)
        elif key == "csum":
            if value != "bad" or not inbound:
                raise fail("csum takes bad, on inbound segments only")
            bad = True
        else:
            raise fail(f"unknown segment field {key!r}")
        i += 2
    if ack is not None and not flags & ACK:
        raise fail("ack given without the . (ACK) flag")
    if flags & ACK and ack is None:
        raise fail("the . (ACK) flag needs an ack value")
    return SegSpec(inbound, flags, start, end, ack, win, options, via, bad)


def _options(text: str, fail: _Fail) -> tuple[OptSpec, ...]:
    out: list[OptSpec] = []
    for part in text.split(","):
        words = part.split()
        if not words:
            raise fail("an empty option")
        kind = words[0]
        if kind in ("nop", "eol", "sackOK"):
            if len(words) != 1:
                raise fail(f"option {kind} takes no value")
            out.append(OptSpec(kind))
        elif kind in ("mss", "wscale"):
            if len(words) != 2:
                raise fail(f"option {kind} takes one value")
            limit = 0xFFFF if kind == "mss" else 14
            out.append(OptSpec(kind, (_maybe(words[1], kind, fail, limit),)))
        elif kind == "TS":
            if len(words) != 5 or words[1] != "val" or words[3] != "ecr":
                raise fail("option TS is written TS val N ecr N")
            out.append(
                OptSpec("TS", (_maybe(words[2], "TS val", fail), _maybe(words[4], "TS ecr", fail)))
            )
        elif kind == "sack":
            if not 2 <= len(words) <= 5:
                raise fail("option sack takes one to four blocks a:b")
            values: list[int | None] = []
            for block in words[1:]:
                left, sep, right = block.partition(":")
                if not sep:
                    raise fail(f"SACK block {block!r} is not a:b")
                values += [_maybe(left, "SACK edge", fail), _maybe(right, "SACK edge", fail)]
            out.append(OptSpec("sack", tuple(values)))
        else:
            raise fail(f"unknown option {kind!r}")
    return tuple(out)


def _call(text: str, fail: _Fail) -> Call:
    words = text.split()
    name, args = words[0], words[1:]
    if name not in CALLS:
        raise fail(f"unknown call {name!r} (calls: {', '.join(sorted(CALLS))})")
    via = 0
    if len(args) >= 2 and args[-2] == "via":
        if name in ("listen", "connect"):
            raise fail(f"{name} takes no via")
        via = _int(args[-1], "via", fail, 15)
        args = args[:-2]
    if name == "listen" and args:
        if len(args) != 2 or args[0] != "backlog":
            raise fail("listen takes nothing or backlog N")
        return Call(name, (args[0], str(_int(args[1], "backlog", fail, 1 << 16))))
    least, most = CALLS[name]
    if not least <= len(args) <= most:
        raise fail(f"{name} takes {least} to {most} arguments, got {len(args)}")
    if name == "write":
        _int(args[0], "write size", fail, 1 << 24)
    if name == "read" and args[0] not in ("eof", "error"):
        _int(args[0], "read size", fail, 1 << 24)
    if name == "checksum_errors":
        _int(args[0], "checksum error count", fail, 1 << 16)
    if name == "keepalive":
        for a in args:
            _int(a, "keepalive value", fail, 1 << 16)
    if name == "state" and args[0] not in _STATES:
        raise fail(f"unknown state {args[0]!r}")
    return Call(name, tuple(args), via)
