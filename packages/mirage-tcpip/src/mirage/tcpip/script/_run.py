"""The back-end-neutral part of a run: time windows, sequence-number and timestamp
remapping, matching outbound segments against the script.

A back-end drives one stack under test: it injects segments, performs application
calls, and reports the segments the stack sent, each with the time it was seen.
Matching ignores PSH (stacks set it as they like), checks the window only where the
script gives one and options only where the script lists them (then all of them:
an unlisted SACK or timestamp is a mismatch). A pure ACK the script does not
expect is tolerated (stacks may acknowledge each segment or every other one, and
send window updates); anything else unexpected fails the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from mirage.tcpip.tcp import ACK, FIN, PSH, RST, SYN, TcpSegment

from ._model import Call, Event, OptSpec, Script, ScriptError, SegSpec

__all__ = ["Backend", "Output", "RunResult", "run_script", "show"]

MASK = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Output:
    """A segment the stack under test sent, and when it was seen."""

    at: float
    segment: TcpSegment


class Backend(Protocol):
    name: str
    early: float
    """How much earlier than its window an outbound segment may come."""
    late: float
    """How much later than its window an outbound segment may come."""
    remote_port: int
    local_port: int

    def start(self, script: Script) -> None: ...

    def now(self) -> float: ...

    def advance(self, until: float) -> list[Output]:
        """Let time run to ``until``; the segments sent meanwhile."""
        ...

    def next_output(self, deadline: float) -> Output | None:
        """The next segment sent, waiting until ``deadline`` at most."""
        ...

    def inject(self, segment: TcpSegment, *, bad_checksum: bool = False) -> None:
        """Send ``segment`` to the stack (with its checksum spoiled if asked)."""
        ...

    def call(self, call: Call) -> str | None:
        """Perform an application call; a message if it did not do what it should."""
        ...

    def finish(self) -> None: ...


@dataclass
class RunResult:
    """The outcome of a script run on a back-end: the unexpected segments it tolerated."""

    script: str
    backend: str
    tolerated: list[str] = field(default_factory=list)


def show(seg: TcpSegment) -> str:
    flags = "".join(
        ch for bit, ch in ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P")) if seg.flags & bit
    )
    flags += "." if seg.flags & ACK else ""
    text = f"{flags} seq {seg.seq} len {len(seg.payload)}"
    if seg.flags & ACK:
        text += f" ack {seg.ack}"
    text += f" win {seg.window}"
    opts = []
    if seg.mss is not None:
        opts.append(f"mss {seg.mss}")
    if seg.sack_permitted:
        opts.append("sackOK")
    if seg.timestamp is not None:
        opts.append(f"TS val {seg.timestamp[0]} ecr {seg.timestamp[1]}")
    if seg.wscale is not None:
        opts.append(f"wscale {seg.wscale}")
    if seg.sack:
        opts.append("sack " + " ".join(f"{a}:{b}" for a, b in seg.sack))
    if opts:
        text += " <" + ",".join(opts) + ">"
    return text


class _Run:
    def __init__(self, script: Script, backend: Backend) -> None:
        self.script = script
        self.b = backend
        self.isn: dict[int, int] = {}
        self.ts_offset: dict[int, int] = {}
        self.result = RunResult(script.name, backend.name)

    def fail(self, event: Event | None, why: str) -> ScriptError:
        return ScriptError(f"{self.script.name} [{self.b.name}]", event.line if event else 0, why)

    def via(self, seg: TcpSegment) -> int:
        return (seg.dst_port - self.b.remote_port) & 0xFFFF

    # ---------------------------------------------------------------- inbound

    def build(self, spec: SegSpec) -> TcpSegment:
        isn = self.isn.get(spec.via, 0)
        ts_off = self.ts_offset.get(spec.via, 0)
        mss = wscale = None
        sack_ok = False
        ts = None
        sack: list[tuple[int, int]] = []
        for opt in spec.options or ():
            v = opt.values
            if opt.kind == "mss":
                mss = v[0] if v[0] is not None else 1460
            elif opt.kind == "wscale":
                wscale = v[0] if v[0] is not None else 7
            elif opt.kind == "sackOK":
                sack_ok = True
            elif opt.kind == "TS":
                ts = ((v[0] or 0) & MASK, ((v[1] or 0) + ts_off) & MASK)
            elif opt.kind == "sack":
                for i in range(0, len(v), 2):
                    sack.append((((v[i] or 0) + isn) & MASK, ((v[i + 1] or 0) + isn) & MASK))
        return TcpSegment(
            (self.b.remote_port + spec.via) & 0xFFFF,
            self.b.local_port,
            spec.seq & MASK,
            ((spec.ack or 0) + isn) & MASK if spec.ack is not None else 0,
            spec.flags,
            spec.win if spec.win is not None else 65535,
            bytes(spec.length),
            mss,
            wscale,
            sack_ok,
            ts,
            tuple(sack),
        )

    # ---------------------------------------------------------------- outbound

    def learn(self, seg: TcpSegment, spec: SegSpec) -> None:
        via = self.via(seg)
        if seg.syn:
            self.isn[via] = (seg.seq - spec.seq) & MASK
        if seg.timestamp is not None and via not in self.ts_offset:
            given = next((o.values[0] for o in spec.options or () if o.kind == "TS"), None)
            self.ts_offset[via] = (seg.timestamp[0] - (given or 0)) & MASK

    def mismatch(self, seg: TcpSegment, spec: SegSpec) -> str | None:
        via = self.via(seg)
        if via != spec.via:
            return f"to peer {via}, not {spec.via}"
        want = spec.flags & ~PSH
        if (seg.flags & ~PSH & 0x3F) != want:
            return "flags differ"
        isn = (seg.seq - spec.seq) & MASK if seg.syn else self.isn.get(via, 0)
        if ((seg.seq - isn) & MASK) != spec.seq:
            return f"sequence number {(seg.seq - isn) & MASK}, not {spec.seq}"
        if len(seg.payload) != spec.length:
            return f"{len(seg.payload)} bytes of data, not {spec.length}"
        if spec.ack is not None and seg.ack != spec.ack & MASK:
            return f"ack {seg.ack}, not {spec.ack}"
        if spec.win is not None and seg.window != spec.win:
            return f"window {seg.window}, not {spec.win}"
        if spec.options is not None:
            return self.option_mismatch(seg, spec.options, isn, via)
        return None

    def option_mismatch(
        self, seg: TcpSegment, opts: tuple[OptSpec, ...], isn: int, via: int
    ) -> str | None:
        kinds = {o.kind: o for o in opts}
        checks: list[tuple[str, bool, str]] = [
            ("mss", seg.mss is not None, "MSS"),
            ("wscale", seg.wscale is not None, "window scale"),
            ("sackOK", seg.sack_permitted, "SACK-permitted"),
            ("TS", seg.timestamp is not None, "timestamps"),
            ("sack", bool(seg.sack), "SACK blocks"),
        ]
        for kind, present, what in checks:
            if (kind in kinds) != present:
                return f"{what} {'missing' if kind in kinds else 'not expected'}"
        if "mss" in kinds and kinds["mss"].values[0] not in (None, seg.mss):
            return f"MSS {seg.mss}, not {kinds['mss'].values[0]}"
        if "wscale" in kinds and kinds["wscale"].values[0] not in (None, seg.wscale):
            return f"window scale {seg.wscale}, not {kinds['wscale'].values[0]}"
        if "TS" in kinds and seg.timestamp is not None:
            ecr = kinds["TS"].values[1]
            if ecr is not None and seg.timestamp[1] != ecr:
                return f"TS ecr {seg.timestamp[1]}, not {ecr}"
        if "sack" in kinds:
            want = kinds["sack"].values
            got = [e for block in seg.sack for e in block]
            if len(got) != len(want):
                return f"{len(seg.sack)} SACK blocks, not {len(want) // 2}"
            for g, w in zip(got, want, strict=True):
                if w is not None and g != w & MASK:
                    return f"SACK blocks {seg.sack}, not {want}"
        return None

    # ---------------------------------------------------------------- the run

    def check_quiet(self, outputs: list[Output], event: Event | None) -> None:
        for out in outputs:
            seg = out.segment
            if seg.flags & (SYN | FIN | RST) or seg.payload:
                where = f"before line {event.line}" if event else "at the end"
                raise self.fail(event, f"unexpected segment {where} at {out.at:.3f}s: {show(seg)}")
            self.result.tolerated.append(f"{out.at:.3f}s {show(seg)}")

    def run(self) -> RunResult:
        b = self.b
        b.start(self.script)
        base = 0.0
        try:
            for event in self.script.events:
                if event.only is not None and event.only != b.name:
                    continue
                lo = base + event.lo if event.relative else event.lo
                hi = base + event.hi if event.relative else event.hi
                if event.segment is not None and not event.segment.inbound:
                    base = self.expect(event, event.segment, lo, hi)
                    continue
                self.check_quiet(b.advance(lo), event)
                if event.segment is not None:
                    b.inject(self.build(event.segment), bad_checksum=event.segment.bad_checksum)
                elif event.call is not None:
                    why = b.call(event.call)
                    if why is not None:
                        raise self.fail(event, f"{event.call.name}: {why}")
                base = max(lo, b.now())
            self.check_quiet(b.advance(b.now()), None)
        finally:
            b.finish()
        return self.result

    def expect(self, event: Event, spec: SegSpec, lo: float, hi: float) -> float:
        b = self.b
        skipped: list[str] = []
        while True:
            out = b.next_output(hi + b.late)
            if out is None:
                extra = f" (tolerated meanwhile: {'; '.join(skipped)})" if skipped else ""
                raise self.fail(event, f"expected a segment by {hi:.3f}s, none came{extra}")
            seg = out.segment
            why = self.mismatch(seg, spec)
            if why is None:
                break
            if seg.flags & ~PSH == ACK and not seg.payload:
                skipped.append(f"{out.at:.3f}s {show(seg)} ({why})")
                self.result.tolerated.append(skipped[-1])
                continue
            raise self.fail(event, f"got {show(seg)} at {out.at:.3f}s: {why}")
        if out.at < lo - b.early:
            raise self.fail(
                event, f"segment came at {out.at:.3f}s, before its window [{lo:.3f}, {hi:.3f}]"
            )
        self.learn(seg, spec)
        return out.at


def run_script(script: Script, backend: Backend) -> RunResult:
    """Run ``script`` against ``backend``; raises :class:`ScriptError` on a mismatch."""
    return _Run(script, backend).run()
