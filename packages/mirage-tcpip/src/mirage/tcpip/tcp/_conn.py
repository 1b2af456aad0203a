"""One TCP connection as a sans-IO state machine (RFC 9293 with RFC 5961, 6298,
6582, 7323).

Theory of operation. A :class:`Connection` is made for one 4-tuple, either active
(``open()`` sends a SYN) or passive (``accept(syn)`` answers a SYN that reached a
listener). The driver then feeds it every segment of that 4-tuple with
``receive(segment, now)``, application calls (``send``, ``read``, ``shutdown``,
``close``, ``abort``) and timer expiries (``handle_timer(now)`` at ``get_timer()``),
and after each call collects the segments to transmit with ``take_segments()``.
Nothing here reads a clock or touches a socket.

Sequence numbers are kept unwrapped (Python ints growing from the ISN); incoming
32-bit numbers are unwrapped relative to the current state, outgoing ones wrapped.

States move as in RFC 9293 figure 5: CLOSED -> SYN_SENT / SYN_RECEIVED ->
ESTABLISHED -> (FIN_WAIT_1 -> FIN_WAIT_2 | CLOSING -> TIME_WAIT) or (CLOSE_WAIT ->
LAST_ACK) -> CLOSED, including simultaneous open (SYN_SENT -> SYN_RECEIVED) and
simultaneous close (FIN_WAIT_1 -> CLOSING). A connection in ``CLOSED`` is finished;
``error`` says why if it did not end normally.

Sending: a bounded send buffer holds data from SND.UNA on; segments go out while
the peer's window and the congestion window allow (slow start and congestion
avoidance with byte counting, CUBIC or NewReno; limited transmit; fast retransmit and
NewReno recovery with partial ACKs, or with SACK the RFC 6675 recovery: IsLost,
pipe and NextSeg over the scoreboard, one rescue retransmission), with Nagle's
algorithm (Minshall's variant) unless ``nodelay``. The retransmission timer follows
RFC 6298 (1 s initial, 0.2 s floor, Karn's rule, or RTT samples from timestamps);
after a timeout, data the peer SACKed is skipped; a zero window is probed.
Receiving: in-order data goes to a bounded receive buffer whose free space is the
advertised window; out-of-order data waits in a reassembly map within the window and
is reported in SACK blocks; ACKs are delayed (every second full segment at once,
else after ``delayed_ack``) except for out-of-order data, data while a hole is open,
and FINs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from ._segment import ACK, FIN, PSH, RST, SYN, TcpSegment, fast_segment

__all__ = ["Connection", "State", "TcpConfig"]

MASK = 0xFFFFFFFF
CUBIC_C = 0.4
CUBIC_BETA = 0.7
NO_CWND = 1 << 30
"""The congestion window with ``congestion="none"``: larger than any buffer."""
CONGESTION_CONTROLS = ("cubic", "newreno", "none")
CUBIC_ALPHA = 3 * (1 - CUBIC_BETA) / (1 + CUBIC_BETA)


class State(enum.Enum):
    CLOSED = "CLOSED"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"


_SYNCHRONIZED = {
    State.ESTABLISHED,
    State.FIN_WAIT_1,
    State.FIN_WAIT_2,
    State.CLOSE_WAIT,
    State.CLOSING,
    State.LAST_ACK,
    State.TIME_WAIT,
}
_RECEIVING = {State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2}
_SENDING = {State.ESTABLISHED, State.CLOSE_WAIT}
_KEEPALIVE = {State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_2}


@dataclass(frozen=True, slots=True)
class TcpConfig:
    """The settings of a TCP connection (each field says what it sets)."""

    mss: int = 1460
    """Largest segment payload we accept (our MTU minus 40)."""
    send_buffer: int = 256 * 1024
    recv_buffer: int = 256 * 1024
    nodelay: bool = False
    delayed_ack: float = 0.04
    rto_initial: float = 1.0
    rto_min: float = 0.2
    """Floor of the computed RTO. RFC 6298 2.4 says 1 s (SHOULD); like Linux we use
    0.2 s, which recovers from loss far sooner on short paths (see
    bench/bench_loss.py). The initial RTO stays 1 s."""
    rto_max: float = 60.0
    max_retries: int = 12
    syn_retries: int = 6
    msl: float = 30.0
    fin_wait_2_timeout: float = 60.0
    timestamps: bool = True
    sack: bool = True
    """Offer SACK (RFC 2018): report out-of-order data, and recover from loss with
    the peer's reports (RFC 6675)."""
    window_scaling: bool = True
    initial_window: int = 10
    """Initial congestion window in segments (RFC 6928)."""
    congestion: str = "cubic"
    """``"cubic"`` (RFC 9438, with its Reno-friendly region), ``"newreno"`` (RFC 5681)
    or ``"none"``: no congestion window at all, the sender limited only by its buffer
    and the peer's window (the choice smoltcp's simulated-link test makes); loss
    recovery (fast retransmit, SACK per RFC 6675, the RTO) still runs, but a loss
    never shrinks the window. ``"none"`` is for links you own, not the Internet."""
    rack: bool = False
    """RACK-TLP (RFC 8985) on top of RFC 6675. RACK: an un-SACKed segment sent before
    one the peer has since received counts as lost once a quarter of the minimum RTT
    has passed beyond its expected ACK, so a loss near the end of a window-limited
    flight is repaired without waiting for three duplicate ACKs or the RTO. TLP: two
    SRTTs after new data with no ACK, one probe (new data, or the last segment
    again). Off by default (Linux's ``tcp_recovery=0``, which the kernel-run scripts
    assume); no reordering window adaptation, no D-SACK, and a lost retransmission
    still needs the RTO."""
    challenge_acks_per_second: int = 10
    keepalive: bool = False
    """Probe an idle connection (RFC 1122 4.2.3.6); off by default, as the RFC says."""
    keepalive_idle: float = 7200.0
    """Seconds without any segment from the peer before the first probe."""
    keepalive_interval: float = 75.0
    """Seconds between unanswered probes."""
    keepalive_count: int = 9
    """Unanswered probes after which the connection is reset and closed."""
    min_mss: int = 88
    """Floor for the send MSS when ICMP fragmentation-needed lowers the path MTU
    (RFC 1191's 68-byte minimum MTU, less the IPv4 and TCP headers, rounded up)."""

    def __post_init__(self) -> None:
        if self.congestion not in CONGESTION_CONTROLS:
            known = ", ".join(CONGESTION_CONTROLS)
            raise ValueError(f"congestion must be one of {known}, not {self.congestion!r}")


def unwrap(value: int, reference: int) -> int:
    """The integer nearest ``reference`` that is ``value`` modulo 2**32."""
    return reference + ((value - reference + (1 << 31)) & MASK) - (1 << 31)


class Connection:
    def __init__(
        self,
        local_port: int,
        remote_port: int,
        iss: int,
        now: float,
        config: TcpConfig | None = None,
    ) -> None:
        self.config = c = config or TcpConfig()
        self.local_port = local_port
        self.remote_port = remote_port
        self.state = State.CLOSED
        self.error: str | None = None
        self.passive = False
        # send sequence space
        self.iss = iss
        self.snd_una = iss
        self.snd_nxt = iss
        self.snd_max = iss
        self.snd_wnd = 0
        self.max_snd_wnd = 0
        self.snd_wl1 = 0
        self.snd_wl2 = 0
        self.snd_wscale = 0
        self._sbuf = bytearray()
        self._fin_queued = False
        self._small_end = iss
        self._fin_seq: int | None = None
        self.fin_acked = False
        # receive sequence space
        self.irs = 0
        self.rcv_nxt = 0
        self.rcv_wscale = 0
        self._rcv_adv = 0
        self._rbuf = bytearray()
        self._ooo: dict[int, bytes] = {}
        self._ooo_fin: int | None = None
        self.eof = False
        self.app_closed = False
        # options
        self.send_mss = 536
        self._peer_wscale: int | None = None
        self.ts_enabled = False
        self.sack_enabled = False
        self._sacked: list[tuple[int, int]] = []  # merged, sorted, above SND.UNA
        # RACK (RFC 8985): segment start -> (end, last send time, retransmitted)
        self._xmit: dict[int, tuple[int, float, bool]] = {}
        # (send time, end) of the newest segment known delivered; the end breaks ties
        self._rack_xmit: tuple[float, int] = (-1.0, 0)
        self._rack_at: float | None = None
        # Tail loss probe (RFC 8985 7): when it fires, and the episode's end (TLP.end_seq)
        self._tlp_at: float | None = None
        self._tlp_end: int | None = None
        self._tlp_rtx = False
        self._min_rtt: float | None = None
        self._rexmit_next = 0
        # RFC 6675 state: HighRxt, RescueRxt, and whether this recovery is SACK-based
        self._high_rxt = 0
        self._rescue: int | None = None
        self._sack_recovery = False
        self._last_ooo: int | None = None
        self._ooo_recent: list[int] = []
        self.ts_recent = 0
        self._ts_offset = iss
        self._last_ack_sent = 0
        # congestion control
        self.cwnd = 0
        self.ssthresh = 1 << 30
        self._cwnd_frac = 0
        self.dupacks = 0
        self.recover: int | None = None
        self.in_recovery = False
        self._limited = 0  # RFC 3042 limited transmit allowance, in bytes
        # CUBIC state (RFC 9438), in segments and seconds
        self._w_max = 0.0
        self._k = 0.0
        self._epoch: float | None = None
        self._w_est = 0.0
        self._cwnd_prior = 0.0
        # RTO (RFC 6298)
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.rto = c.rto_initial
        self._rtt_seq: int | None = None
        self._rtt_time = 0.0
        self._rtx_ts: int | None = None
        self.retries = 0
        # timers (absolute times or None)
        self._rto_at: float | None = None
        self._dack_at: float | None = None
        self._tw_at: float | None = None
        self._fw2_at: float | None = None
        self._persist_at: float | None = None
        self._persist_backoff = 0
        self._unacked_segments = 0
        self._challenge_window = 0.0
        self._challenges = 0
        self._out: list[TcpSegment] = []
        self._now = now
        self.stats_retransmits = 0
        self.stats_fast_retransmits = 0
        self.stats_timeouts = 0
        self.stats_tail_probes = 0
        # keepalive (RFC 1122 4.2.3.6) and path MTU (RFC 1191)
        self.keepalive = c.keepalive
        self.keepalive_idle = c.keepalive_idle
        self.keepalive_interval = c.keepalive_interval
        self.keepalive_count = c.keepalive_count
        self._ka_at: float | None = None
        self.keepalive_probes = 0
        self.stats_keepalives = 0
        self.path_mtu: int | None = None
        """The path MTU to the peer if ICMP has lowered it (RFC 1191)."""
        self.stats_pmtu_updates = 0

    # ------------------------------------------------------------------ opening

    def _our_wscale(self) -> int:
        shift = 0
        while shift < 14 and (self.config.recv_buffer >> shift) > 0xFFFF:
            shift += 1
        return shift

    def _syn(self, ack: bool) -> TcpSegment:
        c = self.config
        ts = None
        if c.timestamps and (not ack or self.ts_enabled):
            ts = (self._ts_now(), self.ts_recent)
        sack_ok = c.sack and (not ack or self.sack_enabled)
        wscale = None
        if c.window_scaling and (not ack or self._peer_wscale is not None):
            wscale = self._our_wscale()
        if ack:
            self._last_ack_sent = self.rcv_nxt
        return TcpSegment(
            self.local_port,
            self.remote_port,
            self.iss,
            self.rcv_nxt if ack else 0,
            SYN | (ACK if ack else 0),
            min(c.recv_buffer, 0xFFFF),
            mss=c.mss,
            wscale=wscale,
            sack_permitted=sack_ok,
            timestamp=ts,
        )

    def open(self, now: float) -> None:
        """Active open: send a SYN."""
        self._now = now
        self.state = State.SYN_SENT
        self.snd_nxt = self.snd_max = self.iss + 1
        self._out.append(self._syn(False))
        self._rto_at = now + self.rto

    def accept(self, syn: TcpSegment, now: float) -> None:
        """Passive open from a listener: answer ``syn`` with a SYN-ACK."""
        self._now = now
        self.passive = True
        self._take_syn_options(syn)
        self.irs = syn.seq
        self.rcv_nxt = syn.seq + 1
        self.snd_wnd = syn.window  # never scaled in a SYN
        self.max_snd_wnd = self.snd_wnd
        self.state = State.SYN_RECEIVED
        self._rcv_adv = self.rcv_nxt + min(self.config.recv_buffer, 0xFFFF)
        self.snd_nxt = self.snd_max = self.iss + 1
        self._out.append(self._syn(True))
        self._rto_at = now + self.rto

    @classmethod
    def from_cookie(
        cls,
        local_port: int,
        remote_port: int,
        *,
        iss: int,
        irs: int,
        mss: int,
        now: float,
        config: TcpConfig | None = None,
    ) -> Connection:
        """A connection whose handshake a SYN cookie completed: ESTABLISHED, without
        window scaling, SACK or timestamps (the cookie SYN-ACK offered none)."""
        conn = cls(local_port, remote_port, iss, now, config)
        conn.state = State.ESTABLISHED
        conn.passive = True
        conn.snd_una = conn.snd_nxt = conn.snd_max = iss + 1
        conn.irs = irs
        conn.rcv_nxt = irs + 1
        conn._rcv_adv = conn.rcv_nxt + min(conn.config.recv_buffer, 0xFFFF)
        conn.snd_wl1 = irs
        conn.send_mss = min(mss, conn.config.mss)
        conn.cwnd = conn._initial_cwnd()
        return conn

    def _take_syn_options(self, syn: TcpSegment) -> None:
        c = self.config
        self.send_mss = min(syn.mss if syn.mss else 536, c.mss)
        if self.path_mtu is not None:
            self.send_mss = max(min(self.send_mss, self.path_mtu - 40), c.min_mss)
        self._peer_wscale = syn.wscale
        if c.window_scaling and syn.wscale is not None:
            self.snd_wscale = syn.wscale
            self.rcv_wscale = self._our_wscale()
        else:
            self.snd_wscale = self.rcv_wscale = 0
        self.sack_enabled = c.sack and syn.sack_permitted
        if c.timestamps and syn.timestamp is not None:
            self.ts_enabled = True
            self.ts_recent = syn.timestamp[0]
            self.send_mss -= 12
        self.cwnd = self._initial_cwnd()

    def _initial_cwnd(self) -> int:
        if self.config.congestion == "none":
            return NO_CWND
        return self.config.initial_window * self.send_mss

    # ------------------------------------------------------------------ application

    @property
    def send_space(self) -> int:
        """How many bytes ``send`` would take now."""
        if self._fin_queued or self.state not in (_SENDING | {State.SYN_SENT, State.SYN_RECEIVED}):
            return 0
        return max(0, self.config.send_buffer - len(self._sbuf))

    @property
    def readable(self) -> int:
        return len(self._rbuf)

    @property
    def unsent(self) -> int:
        """Bytes in the send buffer, not yet acknowledged (sent or not)."""
        return len(self._sbuf)

    def send(self, data: bytes, now: float) -> int:
        """Queue as much of ``data`` as the send buffer takes; returns how much."""
        self._now = now
        n = min(len(data), self.send_space)
        if n:
            self._sbuf += data[:n]
            self._output(now)
        return n

    def read(self, now: float, limit: int = 1 << 30) -> bytes:
        """Take received data; opening the window may send a window update."""
        self._now = now
        if not self._rbuf:
            return b""
        before = self._window()
        data = bytes(self._rbuf[:limit])
        del self._rbuf[:limit]
        after = self._window()
        if (
            self.state in _RECEIVING
            and after - before >= min(self.send_mss * 2, self.config.recv_buffer // 2)
            and before < self.config.recv_buffer // 2
        ):
            self._send_ack(now)
        return data

    def shutdown(self, now: float) -> None:
        """No more data from us: a FIN follows what is queued."""
        self._now = now
        if self._fin_queued:
            return
        if self.state in (State.SYN_SENT,) and not self._sbuf:
            self._enter_closed(None)
            return
        if self.state in (State.ESTABLISHED, State.SYN_RECEIVED, State.SYN_SENT):
            self._fin_queued = True
            if self.state is not State.SYN_SENT and self.state is not State.SYN_RECEIVED:
                self.state = State.FIN_WAIT_1
        elif self.state is State.CLOSE_WAIT:
            self._fin_queued = True
            self.state = State.LAST_ACK
        else:
            return
        self._output(now)

    def close(self, now: float) -> None:
        """Shut down, and read no more: unread or later data resets the connection."""
        self._now = now
        self.app_closed = True
        if self._rbuf and self.state in _SYNCHRONIZED:
            self.abort(now, "closed with unread data")
            return
        self.shutdown(now)
        if self.state is State.FIN_WAIT_2:
            self._fw2_at = now + self.config.fin_wait_2_timeout

    def abort(self, now: float, reason: str = "aborted") -> None:
        self._now = now
        if self.state in _SYNCHRONIZED | {State.SYN_RECEIVED}:
            self._out.append(self._segment(RST | ACK, self.snd_nxt))
        self._enter_closed(reason)

    # ------------------------------------------------------------------ output

    def take_segments(self) -> list[TcpSegment]:
        out, self._out = self._out, []
        return out

    def _ts_now(self) -> int:
        return (int(self._now * 1000) + self._ts_offset) & MASK

    def _window(self) -> int:
        return max(0, self.config.recv_buffer - len(self._rbuf))

    def _advertised(self) -> int:
        # Never shrink the window's right edge once advertised (RFC 9293 3.8.6.2.2).
        wnd = self._window()
        edge = self.rcv_nxt + wnd
        if edge < self._rcv_adv:
            wnd = self._rcv_adv - self.rcv_nxt
        scaled = min(wnd >> self.rcv_wscale, 0xFFFF)
        self._rcv_adv = max(self._rcv_adv, self.rcv_nxt + (scaled << self.rcv_wscale))
        return scaled

    def _segment(self, flags: int, seq: int, payload: bytes = b"") -> TcpSegment:
        if payload and self.sack_enabled and self.config.rack:
            self._xmit[seq] = (seq + len(payload), self._now, seq < self.snd_max)
        if flags & ACK:
            self._last_ack_sent = self.rcv_nxt
            self._dack_at = None
            self._unacked_segments = 0
        if flags & ACK:
            return fast_segment(
                self.local_port,
                self.remote_port,
                seq,
                self.rcv_nxt,
                flags,
                window=self._advertised(),
                payload=payload,
                timestamp=(self._ts_now(), self.ts_recent) if self.ts_enabled else None,
                sack=self._sack_blocks() if self._ooo and self.sack_enabled else (),
            )
        return fast_segment(
            self.local_port,
            self.remote_port,
            seq,
            0,
            flags,
            window=0,
            payload=payload,
            timestamp=(self._ts_now(), self.ts_recent) if self.ts_enabled else None,
        )

    def _sack_blocks(self) -> tuple[tuple[int, int], ...]:
        """Out-of-order ranges held, the most recently received first (RFC 2018 4)."""
        ranges: list[list[int]] = []
        for start in sorted(self._ooo):
            end = start + len(self._ooo[start])
            if ranges and start <= ranges[-1][1]:
                ranges[-1][1] = max(ranges[-1][1], end)
            else:
                ranges.append([start, end])
        # The block holding the newest arrival first, then the others by how
        # recently they grew (RFC 2018 section 4).
        order = {start: i for i, start in enumerate(self._ooo_recent)}

        def recency(r: list[int]) -> int:
            return min((i for s, i in order.items() if r[0] <= s < r[1]), default=1 << 30)

        ranges.sort(key=recency)
        limit = 3 if self.ts_enabled else 4
        return tuple((a & MASK, b & MASK) for a, b in ranges[:limit])

    def _send_ack(self, now: float) -> None:
        self._out.append(self._segment(ACK, self.snd_nxt))

    def _output(self, now: float, *, force_one: bool = False) -> None:
        """Send what the windows allow, starting at SND.NXT."""
        if self.state not in _SYNCHRONIZED or self.state is State.TIME_WAIT:
            return
        mss = self.send_mss
        while True:
            limit = mss
            if self._sacked and self.snd_nxt < self.snd_max:
                for a, b in self._sacked:
                    if a <= self.snd_nxt < b:
                        self.snd_nxt = b  # the peer has it: skip
                    elif self.snd_nxt < a:
                        limit = min(mss, a - self.snd_nxt)
                        break
            offset = self.snd_nxt - self.snd_una
            avail = len(self._sbuf) - offset
            flight = self.snd_nxt - self.snd_una
            window = min(self.snd_wnd, self.cwnd + self._limited)
            usable = window - flight
            n = min(limit, avail, max(usable, 0))
            send_fin = (
                self._fin_queued
                and self._fin_seq is None
                and offset + n >= len(self._sbuf)
                and self.snd_nxt + n == self.snd_una + len(self._sbuf)
            )
            if force_one and n <= 0 and avail > 0 and self.snd_wnd == 0:
                n = 1  # zero-window probe: one byte beyond the window
                send_fin = False
            force_one = False
            if n <= 0 and not send_fin:
                break
            if (
                0 < n < mss
                and n == avail
                and self.snd_una < self._small_end
                and not self.config.nodelay
                and not send_fin
                and self.snd_nxt >= self.snd_max
            ):
                # Nagle, as Minshall refined it (and Linux does): hold a small
                # segment while an earlier small segment is unacknowledged.
                break
            if (
                0 < n < mss
                and n < avail
                and n < self.max_snd_wnd // 2
                and flight > 0
                and self.snd_nxt >= self.snd_max
            ):
                break  # sender-side silly window avoidance
            payload = bytes(self._sbuf[offset : offset + n])
            flags = ACK | (PSH if n == avail and n else 0) | (FIN if send_fin else 0)
            if self.snd_nxt < self.snd_max:
                self.stats_retransmits += 1
            self._out.append(self._segment(flags, self.snd_nxt, payload))
            if self._rtt_seq is None and self.snd_nxt >= self.snd_max and n:
                self._rtt_seq = self.snd_nxt + n
                self._rtt_time = now
            if 0 < n < mss:
                self._small_end = self.snd_nxt + n
            self.snd_nxt += n
            if send_fin:
                self._fin_seq = self.snd_nxt
                self.snd_nxt += 1
            self.snd_max = max(self.snd_max, self.snd_nxt)
            if self._rto_at is None:
                self._rto_at = now + self.rto
            if n and self.snd_nxt >= self.snd_max and self.config.rack:
                self._arm_pto(now)
            if send_fin:
                break
        if (
            self.snd_wnd == 0
            and len(self._sbuf) > self.snd_nxt - self.snd_una
            and self._rto_at is None
            and self._persist_at is None
        ):
            self._persist_at = now + max(self.rto, 0.2) * (1 << min(self._persist_backoff, 6))

    def _retransmit_head(self, now: float) -> None:
        n = min(self.send_mss, len(self._sbuf))
        fin = self._fin_seq is not None and self.snd_una + n == self._fin_seq
        flags = ACK | (FIN if fin else 0) | (PSH if n else 0)
        self.stats_retransmits += 1
        self._rtx_ts = self._ts_now()
        self._out.append(self._segment(flags, self.snd_una, bytes(self._sbuf[:n])))
        self._rtt_seq = None  # Karn

    # ------------------------------------------------------------------ timers

    def get_timer(self) -> float | None:
        times = [
            t
            for t in (
                self._rto_at,
                self._rack_at,
                self._tlp_at,
                self._dack_at,
                self._tw_at,
                self._fw2_at,
                self._persist_at,
                self._ka_at,
            )
            if t is not None
        ]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        self._now = now
        if self._tw_at is not None and now >= self._tw_at:
            self._tw_at = None
            self._enter_closed(None)
            return
        if self._fw2_at is not None and now >= self._fw2_at:
            self._fw2_at = None
            if self.state is State.FIN_WAIT_2:
                self._enter_closed(None)
                return
        if self._dack_at is not None and now >= self._dack_at:
            self._send_ack(now)
        if self._persist_at is not None and now >= self._persist_at:
            self._persist_at = None
            self._persist_backoff += 1
            self._output(now, force_one=True)
        if self._rack_at is not None and now >= self._rack_at:
            self._rack_at = None
            self._rack_timeout(now)
        if self._tlp_at is not None and now >= self._tlp_at:
            self._tlp_at = None
            self._on_pto(now)
        if self._rto_at is not None and now >= self._rto_at:
            self._on_rto(now)
        if self._ka_at is not None and now >= self._ka_at:
            self._on_keepalive(now)

    # ------------------------------------------------------------------ keepalive

    def set_keepalive(
        self,
        now: float,
        enabled: bool = True,
        *,
        idle: float | None = None,
        interval: float | None = None,
        count: int | None = None,
    ) -> None:
        """Turn keepalive on or off for this connection, optionally with new times."""
        self.keepalive = enabled
        if idle is not None:
            self.keepalive_idle = idle
        if interval is not None:
            self.keepalive_interval = interval
        if count is not None:
            self.keepalive_count = count
        self.keepalive_probes = 0
        self._ka_at = None
        self._ka_touch(now)

    def _ka_touch(self, now: float) -> None:
        """Something arrived from the peer: the idle time starts again."""
        if self.keepalive and self.state in _KEEPALIVE:
            self.keepalive_probes = 0
            self._ka_at = now + self.keepalive_idle
        else:
            self._ka_at = None

    def _on_keepalive(self, now: float) -> None:
        self._ka_at = None
        if not self.keepalive or self.state not in _KEEPALIVE:
            return
        if self.snd_max > self.snd_una or self._persist_at is not None:
            # Data in flight: the retransmission timer (or the persist timer)
            # watches the peer; look again after another idle period.
            self._ka_at = now + self.keepalive_idle
            return
        if self.keepalive_probes >= self.keepalive_count:
            self._out.append(self._segment(RST | ACK, self.snd_nxt))
            self._enter_closed("timed out (keepalive)")
            return
        # The probe: an ACK one below SND.NXT, which the peer must answer with an ACK.
        self.keepalive_probes += 1
        self.stats_keepalives += 1
        self._out.append(self._segment(ACK, self.snd_nxt - 1))
        self._ka_at = now + self.keepalive_interval

    # ------------------------------------------------------------------ path MTU

    def path_mtu_changed(self, mtu: int, now: float) -> bool:
        """ICMP says a packet of ours was too big for a ``mtu``-byte link (RFC 1191).

        Lowers the send MSS (never below ``min_mss``) and at once resends what was
        in flight in segments of the new size, without treating it as congestion.
        Returns whether anything changed."""
        self._now = now
        options = 12 if self.ts_enabled else 0
        mss = max(mtu - 40 - options, self.config.min_mss - options)
        if self.path_mtu is None or mtu < self.path_mtu:
            self.path_mtu = max(mtu, self.config.min_mss + 40)
        if mss >= self.send_mss:
            return False
        self.send_mss = mss
        self.stats_pmtu_updates += 1
        if self.state in _SYNCHRONIZED and self.snd_max > self.snd_una:
            # Go back to SND.UNA and resend in smaller pieces (Linux's "simple
            # retransmit"): the lost segments were too big, not a sign of congestion.
            self.cwnd = max(self.cwnd, self.send_mss)
            self.snd_nxt = self.snd_una
            self._fin_seq = None
            self._rtt_seq = None
            self._sacked = []
            self._rto_at = None
            self._output(now)
        return True

    def _on_rto(self, now: float) -> None:
        self._rto_at = None
        self._tlp_at = None
        self._tlp_end = None
        self.stats_timeouts += 1
        self.retries += 1
        limit = (
            self.config.syn_retries
            if self.state in (State.SYN_SENT, State.SYN_RECEIVED)
            else self.config.max_retries
        )
        if self.retries > limit:
            # Give up without a word (RFC 9293 3.8.3, R2; as Linux's tcp_write_err):
            # the peer has not answered, so a RST would most likely be lost too.
            self._enter_closed("timed out")
            return
        self.rto = min(self.rto * 2, self.config.rto_max)
        self._rtt_seq = None
        self._rtx_ts = self._ts_now()
        if self.state is State.SYN_SENT:
            self._out.append(self._syn(False))
            self._rto_at = now + self.rto
            return
        if self.state is State.SYN_RECEIVED:
            self._out.append(self._syn(True))
            self._rto_at = now + self.rto
            return
        flight = self.snd_max - self.snd_una
        if flight <= 0:
            return
        # RFC 5681 (7): ssthresh from the flight, loss window of one segment; go back N.
        self.ssthresh = self._on_congestion(flight, now)
        self.cwnd = self.send_mss if self.config.congestion != "none" else NO_CWND
        self.recover = self.snd_max  # RFC 6582: no fast retransmit for old dupacks
        self.in_recovery = self._sack_recovery = False
        self.dupacks = 0
        self._limited = 0
        # Go back to SND.UNA, but keep the SACK scoreboard: what the peer holds is
        # skipped, not sent again (as Linux does; RFC 6675 5.1 leaves it open).
        self.snd_nxt = self.snd_una
        if self._fin_seq is not None:
            self._fin_seq = None
        self.stats_retransmits += 1
        before = len(self._out)
        self._output(now, force_one=self.snd_wnd == 0)
        if len(self._out) == before:
            # Nothing fits (zero window): still retransmit the head to probe.
            self._retransmit_head(now)
            self.snd_nxt = max(self.snd_nxt, self.snd_una + min(self.send_mss, len(self._sbuf)))
        if self._rto_at is None:
            self._rto_at = now + self.rto

    def _rtt_sample(self, rtt: float) -> None:
        g = 0.001
        if self._min_rtt is None or rtt < self._min_rtt:
            self._min_rtt = rtt
        if self.srtt is None:
            self.srtt = rtt
            self.rttvar = rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        self.rto = min(
            max(self.srtt + max(g, 4 * self.rttvar), self.config.rto_min), self.config.rto_max
        )

    # ------------------------------------------------------------------ input

    def receive(self, seg: TcpSegment, now: float) -> None:
        self._receive(seg, now)
        if self.keepalive or self._ka_at is not None:
            self._ka_touch(now)

    def _receive(self, seg: TcpSegment, now: float) -> None:
        self._now = now
        flags = seg.flags
        if self.state is State.CLOSED:
            return
        if self.state is State.SYN_SENT:
            self._receive_syn_sent(seg, now)
            return
        if (
            self.state is State.SYN_RECEIVED
            and flags & SYN
            and flags & ACK
            and seg.seq == self.irs & MASK
            and self.snd_una < unwrap(seg.ack, self.snd_una) <= self.snd_max
        ):
            # Simultaneous open (RFC 9293 figure 7): the peer's SYN-ACK acknowledges
            # our SYN; take it as the ACK that completes the handshake.
            seg = replace(seg, flags=seg.flags & ~SYN, seq=(seg.seq + 1) & MASK)
            flags = seg.flags
        seq = unwrap(seg.seq, self.rcv_nxt)
        ack = unwrap(seg.ack, self.snd_una)
        if (
            self.state is State.SYN_RECEIVED
            and flags & SYN
            and not flags & ACK
            and not flags & RST
            and seq == self.irs
        ):
            self._out.append(self._syn(True))  # the SYN again: so is our SYN-ACK
            return
        # PAWS (RFC 7323 5.3)
        if (
            self.ts_enabled
            and seg.timestamp is not None
            and not flags & RST
            and self._older(seg.timestamp[0], self.ts_recent)
        ):
            self._send_ack(now)
            return
        # 1. sequence number check
        if not self._acceptable(seq, seg):
            if not flags & RST:
                if self.state is State.TIME_WAIT and flags & FIN:
                    self._tw_at = now + 2 * self.config.msl
                self._send_ack(now)
            return
        # 2. RST (RFC 5961 3.2); ignored in TIME-WAIT (RFC 1337: no assassination)
        if flags & RST and self.state is State.TIME_WAIT:
            return
        if flags & RST:
            if seq == self.rcv_nxt:
                if self.state is State.SYN_RECEIVED and self.passive:
                    self._enter_closed(None)
                else:
                    self._enter_closed(
                        "connection reset by peer"
                        if self.state is not State.SYN_RECEIVED
                        else "connection refused"
                    )
            else:
                self._challenge_ack(now)
            return
        # 3. SYN in a synchronized state (RFC 5961 4.2)
        if flags & SYN:
            if self.state is State.SYN_RECEIVED and seq == self.irs:
                self._out.append(self._syn(True))  # retransmitted SYN: answer again
                return
            self._challenge_ack(now)
            return
        # 4. ACK
        if not flags & ACK:
            return
        if (
            self.ts_enabled
            and seg.timestamp is not None
            and seq <= self._last_ack_sent < seq + max(seg.seq_len, 1)
        ):
            self.ts_recent = seg.timestamp[0]
        if self.state is State.SYN_RECEIVED:
            if self.snd_una < ack <= self.snd_max:
                self.snd_una = self.iss + 1
                self.state = State.ESTABLISHED if not self._fin_queued else State.FIN_WAIT_1
                self.snd_wnd = seg.window << self.snd_wscale
                self.max_snd_wnd = max(self.max_snd_wnd, self.snd_wnd)
                self.snd_wl1, self.snd_wl2 = seq, ack
                self.retries = 0
                self._rto_at = None
                self._rtt_seq = None
            else:
                self._out.append(TcpSegment(self.local_port, self.remote_port, ack, 0, RST, 0))
                return
        if not self._process_ack(seg, seq, ack, now):
            return
        if self.state is State.CLOSED:
            return
        # 5. data and 6. FIN
        if seg.payload or flags & FIN:
            if self.state in _RECEIVING:
                self._receive_data(seq, seg, now)
            elif flags & FIN and self.state is State.TIME_WAIT:
                self._tw_at = now + 2 * self.config.msl
                self._send_ack(now)
            else:
                self._send_ack(now)
        self._output(now)

    @staticmethod
    def _older(ts: int, than: int) -> bool:
        """``ts`` is before ``than`` in 32-bit timestamp space."""
        return ts != than and ((than - ts) & MASK) < (1 << 31)

    def _acceptable(self, seq: int, seg: TcpSegment) -> bool:
        wnd = self._rcv_adv - self.rcv_nxt if self._rcv_adv > self.rcv_nxt else self._window()
        wnd = max(wnd, 0)
        length = seg.seq_len
        if length == 0:
            if wnd == 0:
                return seq == self.rcv_nxt
            return self.rcv_nxt <= seq < self.rcv_nxt + wnd
        if wnd == 0:
            # Zero window: still take ACKs and RSTs at RCV.NXT (RFC 9293 3.10.7.4).
            return seq == self.rcv_nxt
        end = seq + length - 1
        return (self.rcv_nxt <= seq < self.rcv_nxt + wnd) or (
            self.rcv_nxt <= end < self.rcv_nxt + wnd
        )

    def _challenge_ack(self, now: float) -> None:
        if now - self._challenge_window >= 1.0:
            self._challenge_window = now
            self._challenges = 0
        if self._challenges < self.config.challenge_acks_per_second:
            self._challenges += 1
            self._send_ack(now)

    def _receive_syn_sent(self, seg: TcpSegment, now: float) -> None:
        ack = unwrap(seg.ack, self.snd_una)
        if seg.has_ack and (ack <= self.iss or ack > self.snd_max):
            if not seg.rst:
                self._out.append(TcpSegment(self.local_port, self.remote_port, seg.ack, 0, RST, 0))
            return
        if seg.rst:
            if seg.has_ack:
                self._enter_closed("connection refused")
            return
        if not seg.syn:
            return
        self._take_syn_options(seg)
        self.irs = seg.seq
        self.rcv_nxt = seg.seq + 1
        self._rcv_adv = self.rcv_nxt + min(self.config.recv_buffer, 0xFFFF)
        if seg.has_ack:
            self.snd_una = ack
            self.snd_wnd = seg.window << self.snd_wscale
            self.max_snd_wnd = self.snd_wnd
            self.snd_wl1, self.snd_wl2 = seg.seq, ack
            self.state = State.ESTABLISHED
            self.retries = 0
            self._rto_at = None
            if self._fin_queued:
                self.state = State.FIN_WAIT_1
            self._send_ack(now)
            self._output(now)
        else:
            # Simultaneous open (RFC 9293 3.5 figure 7).
            self.state = State.SYN_RECEIVED
            self.snd_wnd = seg.window
            self.max_snd_wnd = self.snd_wnd
            self._out.append(self._syn(True))
            self._rto_at = now + self.rto

    def _process_ack(self, seg: TcpSegment, seq: int, ack: int, now: float) -> bool:
        """RFC 9293 3.10.7.4 step 5 with RFC 5961 5.2; False: drop the segment."""
        if ack > self.snd_max:
            self._send_ack(now)
            return False
        if ack < self.snd_una - self.max_snd_wnd:
            self._challenge_ack(now)
            return False
        window = seg.window << self.snd_wscale
        if seg.sack and self.sack_enabled:
            self._take_sack(seg.sack, ack)
        if self._xmit:
            self._rack_update(ack, now)
        if ack > self.snd_una:
            acked = ack - self.snd_una
            data_end = self.snd_una + len(self._sbuf)
            data_acked = min(acked, len(self._sbuf))
            del self._sbuf[:data_acked]
            old_una = self.snd_una
            self.snd_una = ack
            if self._sacked:
                self._sacked = [(max(a, ack), b) for a, b in self._sacked if b > ack]
            self.snd_nxt = max(self.snd_nxt, self.snd_una)
            if self._fin_queued and ack > data_end:
                self.fin_acked = True
            self.retries = 0
            self._persist_backoff = 0
            # RTT sample: timestamps (RFC 7323 4.1) or the timed segment (Karn).
            if self.ts_enabled and seg.timestamp is not None and seg.timestamp[1]:
                # An echo of a TSval sent before our last retransmission measures
                # the lost ACK's wait, not the path: skip it.
                tsecr = seg.timestamp[1]
                fresh = self._rtx_ts is None or ((tsecr - self._rtx_ts) & MASK) < (1 << 31)
                rtt = ((self._ts_now() - tsecr) & MASK) / 1000.0
                if fresh and rtt < 60:
                    self._rtt_sample(rtt)
            elif self._rtt_seq is not None and ack >= self._rtt_seq:
                self._rtt_sample(now - self._rtt_time)
                self._rtt_seq = None
            self._limited = 0
            if self.srtt is not None:
                # Forward progress ends any backoff (as Linux does; RFC 6298 5.7
                # would wait for a fresh sample, which loss may long deny).
                self.rto = min(
                    max(self.srtt + max(0.001, 4 * self.rttvar), self.config.rto_min),
                    self.config.rto_max,
                )
            self._on_new_ack(old_una, ack, acked, now)
            self._rto_at = None if self.snd_una >= self.snd_max else now + self.rto
            if self.config.rack:
                self._tlp_acked(ack, now)
            self._persist_at = None
        elif (
            ack == self.snd_una
            and not seg.payload
            and not seg.fin
            and window == self.snd_wnd
            and self.snd_max > self.snd_una
        ):
            self._on_dupack(now)
        # window update (RFC 9293 3.10.7.4)
        if self.snd_wl1 < seq or (self.snd_wl1 == seq and self.snd_wl2 <= ack):
            was_closed = self.snd_wnd == 0
            opened = window > self.snd_wnd
            self.snd_wnd = window
            self.max_snd_wnd = max(self.max_snd_wnd, window)
            self.snd_wl1, self.snd_wl2 = seq, ack
            if window == 0 and self.snd_max > self.snd_una and ack == self.snd_una:
                self.retries = 0  # the peer answers our probes: it is alive
            if opened:
                self._persist_at = None
                if was_closed and self.snd_max > self.snd_una:
                    # The window reopened with a probe outstanding: resend from
                    # SND.UNA now rather than after a backed-off timer.
                    self.snd_nxt = self.snd_una
                    self._fin_seq = None
                    self._rto_at = None
                    self._persist_backoff = 0
                    if self.srtt is not None:
                        self.rto = min(
                            max(self.srtt + max(0.001, 4 * self.rttvar), self.config.rto_min),
                            self.config.rto_max,
                        )
                if window and self.snd_nxt > self.snd_una and self._rto_at is None:
                    self._rto_at = now + self.rto
        # state moves on the ACK of our FIN
        if self.fin_acked:
            if self.state is State.FIN_WAIT_1:
                self.state = State.FIN_WAIT_2
                if self.app_closed:
                    self._fw2_at = now + self.config.fin_wait_2_timeout
            elif self.state is State.CLOSING:
                self._enter_time_wait(now)
            elif self.state is State.LAST_ACK:
                self._enter_closed(None)
                return False
        return True

    def _take_sack(self, blocks: tuple[tuple[int, int], ...], ack: int) -> None:
        ranges = list(self._sacked)
        for left, right in blocks:
            a, b = unwrap(left, self.snd_una), unwrap(right, self.snd_una)
            if ack <= a < b <= self.snd_max:  # ignore D-SACKs and nonsense
                ranges.append((a, b))
        ranges.sort()
        merged: list[tuple[int, int]] = []
        for a, b in ranges:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        self._sacked = merged

    def _next_hole(self, start: int) -> tuple[int, int] | None:
        """The first un-SACKed range at or after ``start`` below the highest SACK."""
        if not self._sacked:
            return None
        pos = max(start, self.snd_una)
        for a, b in self._sacked:
            if pos < a:
                return pos, a
            pos = max(pos, b)
        return None

    def _retransmit_hole(self, now: float) -> bool:
        """Retransmit one segment of the next hole not yet resent in this recovery."""
        hole = self._next_hole(self._rexmit_next)
        if hole is None:
            return False
        start, end = hole
        n = min(self.send_mss, end - start, len(self._sbuf) - (start - self.snd_una))
        if n <= 0:
            return False
        off = start - self.snd_una
        self.stats_retransmits += 1
        self._rtx_ts = self._ts_now()
        self._rtt_seq = None
        self._out.append(self._segment(ACK, start, bytes(self._sbuf[off : off + n])))
        self._rexmit_next = start + n
        return True

    def _on_new_ack(self, old_una: int, ack: int, acked: int, now: float) -> None:
        mss = self.send_mss
        if self.in_recovery:
            assert self.recover is not None
            if ack >= self.recover:
                # full ACK: leave fast recovery (RFC 6582 3.2 step 3, option 2)
                self.cwnd = self.ssthresh
                self.in_recovery = self._sack_recovery = False
                self.recover = None
                self.dupacks = 0
            elif self._sack_recovery:
                # RFC 6675 5 (C): a partial ACK updates the scoreboard; send by pipe.
                self._high_rxt = max(self._high_rxt, self.snd_una)
                self._rto_at = now + self.rto
                self._sack_send(now)
            else:
                # partial ACK: retransmit the next hole, deflate (step 4)
                if self._rexmit_next <= self.snd_una or not self._retransmit_hole(now):
                    self._retransmit_head(now)
                    self._rexmit_next = self.snd_una + self.send_mss
                self.cwnd = max(self.cwnd - acked + mss, mss)
                self._rto_at = now + self.rto
            return
        self.dupacks = 0
        if self.recover is not None and ack >= self.recover:
            self.recover = None
        # Appropriate byte counting (RFC 3465): slow start grows by up to 2 SMSS per
        # ACK, congestion avoidance by one SMSS per window of bytes acknowledged, so
        # delayed ACKs do not slow either down.
        if self.cwnd >= NO_CWND:
            return
        if self.cwnd < self.ssthresh:
            self.cwnd += min(acked, 2 * mss)
        elif self.config.congestion == "cubic":
            self._cubic_grow(acked, now)
        else:
            self._cwnd_frac += acked
            if self._cwnd_frac >= self.cwnd:
                self._cwnd_frac -= self.cwnd
                self.cwnd += mss

    def _on_congestion(self, flight: int, now: float) -> int:
        """The new ssthresh after a loss; CUBIC also sets up its next epoch."""
        mss = self.send_mss
        if self.config.congestion == "none":
            return NO_CWND
        if self.config.congestion != "cubic":
            return max(flight // 2, 2 * mss)
        segments = max(self.cwnd, flight) / mss
        self._cwnd_prior = segments
        if segments < self._w_max:  # fast convergence (RFC 9438 4.7)
            self._w_max = segments * (1 + CUBIC_BETA) / 2
        else:
            self._w_max = segments
        self._epoch = None
        return max(int(flight * CUBIC_BETA), 2 * mss)

    def _cubic_grow(self, acked: int, now: float) -> None:
        mss = self.send_mss
        cwnd = self.cwnd / mss
        if self._epoch is None:
            self._epoch = now
            self._k = ((self._w_max - cwnd) / CUBIC_C) ** (1 / 3) if self._w_max > cwnd else 0.0
            self._w_est = cwnd
        rtt = self.srtt if self.srtt is not None else 0.1
        t = now - self._epoch
        target = CUBIC_C * (t + rtt - self._k) ** 3 + self._w_max
        target = min(max(target, cwnd), 1.5 * cwnd)
        # the Reno-friendly estimate (RFC 9438 4.3)
        # Once the estimate is back at the window before the loss, Reno grows by
        # one segment a round trip (RFC 9438 4.3: alpha_cubic becomes 1).
        alpha = 1.0 if self._w_est >= self._cwnd_prior else CUBIC_ALPHA
        self._w_est += alpha * (acked / mss) / cwnd
        cubic = cwnd + (target - cwnd) * (acked / mss) / cwnd
        new = max(self._w_est, cubic)
        self.cwnd = max(int(new * mss), self.cwnd)

    def _on_dupack(self, now: float) -> None:
        self.dupacks += 1
        mss = self.send_mss
        if self.sack_enabled and self._sacked:
            self._sack_dupack(now)
            return
        if self.dupacks < 3 and not self.in_recovery:
            # RFC 3042: each of the first two dupacks lets one new segment out.
            self._limited = self.dupacks * mss
            return
        self._limited = 0
        if self.dupacks == 3:
            if self.recover is not None and self.snd_una < self.recover:
                return  # RFC 6582 4.1: dupacks of an earlier episode
            flight = self.snd_max - self.snd_una
            self.ssthresh = self._on_congestion(flight, now)
            self.recover = self.snd_max
            self.in_recovery = True
            self.stats_fast_retransmits += 1
            self._retransmit_head(now)
            self._rexmit_next = self.snd_una + min(mss, len(self._sbuf))
            self.cwnd = self.ssthresh + 3 * mss
            self._rto_at = now + self.rto
        elif self.dupacks > 3 and self.in_recovery and not self._sack_recovery:
            self.cwnd += mss  # inflate: each dupack means a segment left the network

    # ------------------------------------------------------------------ RFC 6675

    def _sacked_above(self, seq: int) -> tuple[int, int]:
        """(bytes, discontiguous blocks) SACKed above ``seq``."""
        total = blocks = 0
        for a, b in self._sacked:
            if b > seq:
                total += b - max(a, seq + 1)
                blocks += 1
        return total, blocks

    def _is_lost(self, seq: int) -> bool:
        """RFC 6675 IsLost with DupThresh 3."""
        total, blocks = self._sacked_above(seq)
        return blocks >= 3 or total > 2 * self.send_mss or self._rack_lost(seq, self._now)

    # ------------------------------------------------------------------ RFC 8985

    def _rack_window(self) -> float:
        """RACK.rtt + RACK.reo_wnd: the smoothed RTT and a quarter of the minimum."""
        srtt = self.srtt if self.srtt is not None else self.config.rto_initial
        return srtt + (self._min_rtt if self._min_rtt is not None else srtt) / 4

    def _rack_lost(self, seq: int, now: float) -> bool:
        entry = self._xmit.get(seq)
        if entry is None:
            return False
        end, sent, _ = entry
        return (sent, end) < self._rack_xmit and now >= sent + self._rack_window()

    def _rack_update(self, ack: int, now: float) -> None:
        """RFC 8985 6.2 steps 2 and 5, simplified: note the newest send time among the
        segments now delivered (a retransmission only if it has been out at least the
        minimum RTT, so an ACK of the original does not count for it), forget what
        is acknowledged, and arm the reorder timer for the first segment sent earlier
        that is not yet late enough to count as lost."""
        latest = self._rack_xmit
        min_rtt = self._min_rtt or 0.0
        done = []
        for start, (end, sent, rtx) in self._xmit.items():
            delivered = end <= ack
            if not delivered:
                for a, b in self._sacked:
                    if a <= start and end <= b:
                        delivered = True
                        break
                    if a > start:
                        break
            if delivered:
                if not rtx or now - sent >= min_rtt:
                    latest = max(latest, (sent, end))
                if end <= ack:
                    done.append(start)
        for start in done:
            del self._xmit[start]
        self._rack_xmit = latest
        window = self._rack_window()
        wake: float | None = None
        for start, (end, sent, _) in self._xmit.items():
            if (sent, end) < latest and not any(a <= start and end <= b for a, b in self._sacked):
                deadline = sent + window
                if deadline > now and (wake is None or deadline < wake):
                    wake = deadline
        self._rack_at = wake

    def _arm_pto(self, now: float) -> None:
        """RFC 8985 7.2: schedule a tail loss probe two SRTTs after new data (plus
        the worst-case delayed ACK when one segment is out), never after the RTO;
        not in loss recovery, nor while a probe's episode is open."""
        if (
            not self.sack_enabled
            or self.in_recovery
            or self._tlp_end is not None
            or self.state not in _SENDING
            or self.snd_una >= self.snd_max
        ):
            self._tlp_at = None
            return
        pto = 2 * self.srtt if self.srtt is not None else 1.0
        if self.snd_max - self.snd_una <= self.send_mss:
            pto += 0.2
        at = now + pto
        if self._rto_at is not None:
            at = min(at, self._rto_at)
        self._tlp_at = at

    def _on_pto(self, now: float) -> None:
        """RFC 8985 7.3: send one probe, new data if the peer's window takes it, else
        the last segment again; the RTO is then rearmed."""
        if (
            self.in_recovery
            or self.state not in _SENDING
            or self.snd_una >= self.snd_max
            or self.snd_nxt < self.snd_max
        ):
            return
        data_end = self.snd_una + len(self._sbuf)
        window_end = self.snd_una + self.snd_wnd
        if self.snd_max < data_end and self.snd_max < window_end:
            start = self.snd_max
            n = min(self.send_mss, data_end - start, window_end - start)
            rtx = False
        else:
            end = min(self.snd_max, data_end)
            start = max(self.snd_una, end - self.send_mss)
            n = end - start
            rtx = True
        if n <= 0:
            return
        off = start - self.snd_una
        payload = bytes(self._sbuf[off : off + n])
        flags = ACK | (PSH if start + n == data_end else 0)
        self._out.append(self._segment(flags, start, payload))
        self.stats_tail_probes += 1
        if rtx:
            self.stats_retransmits += 1
            self._rtx_ts = self._ts_now()
            self._rtt_seq = None
        else:
            self.snd_nxt = self.snd_max = start + n
        self._tlp_end = self.snd_max
        self._tlp_rtx = rtx
        self._rto_at = now + self.rto

    def _tlp_acked(self, ack: int, now: float) -> None:
        """An ACK that advanced SND.UNA: end a probe's episode once it is covered (a
        retransmitted probe counts as a repaired loss, RFC 8985 7.4.2, since we do
        not read D-SACKs), and schedule the next probe if data is still out."""
        if self._tlp_end is not None and ack >= self._tlp_end:
            if self._tlp_rtx and not self.in_recovery:
                self.ssthresh = self._on_congestion(self.snd_max - self.snd_una, now)
                self.cwnd = max(min(self.cwnd, self.ssthresh), self.send_mss)
            self._tlp_end = None
        self._arm_pto(now)

    def _rack_timeout(self, now: float) -> None:
        """The reorder timer: segments have become lost by time; repair them."""
        if self.state not in _SYNCHRONIZED or not self._sacked:
            return
        if self.in_recovery:
            if self._sack_recovery:
                self._sack_send(now)
        elif self._is_lost(self.snd_una) and (self.recover is None or self.snd_una >= self.recover):
            self._enter_sack_recovery(now)

    def _holes(self) -> list[tuple[int, int]]:
        """Un-SACKed ranges from SND.UNA up to SND.MAX (the last one may be the tail
        above the highest SACK)."""
        out: list[tuple[int, int]] = []
        pos = self.snd_una
        for a, b in self._sacked:
            if a > pos:
                out.append((pos, a))
            pos = max(pos, b)
        if pos < self.snd_max:
            out.append((pos, self.snd_max))
        return out

    def _pipe(self) -> int:
        """RFC 6675 SetPipe: bytes presumed in the network."""
        pipe = 0
        for a, b in self._holes():
            if not self._is_lost(a):
                pipe += b - a
            if a < self._high_rxt:
                pipe += min(b, self._high_rxt) - a
        return pipe

    def _next_seg(self) -> tuple[int, int, bool] | None:
        """RFC 6675 NextSeg: (start, length, is the rescue retransmission)."""
        mss = self.send_mss
        data_end = self.snd_una + len(self._sbuf)
        highest_sack = self._sacked[-1][1] if self._sacked else self.snd_una
        holes = [(max(a, self._high_rxt), b) for a, b in self._holes()]
        holes = [(a, min(b, data_end)) for a, b in holes if a < min(b, data_end)]
        # (1) the first lost hole not yet retransmitted
        for a, b in holes:
            if a < highest_sack and self._is_lost(a):
                return a, min(mss, b - a), False
        # (2) new data the peer's window allows
        if self.snd_max < data_end and self.snd_max + 1 <= self.snd_una + self.snd_wnd:
            n = min(mss, data_end - self.snd_max, self.snd_una + self.snd_wnd - self.snd_max)
            return self.snd_max, n, False
        # (3) a hole below the highest SACK, not (yet) presumed lost
        for a, b in holes:
            if a < highest_sack:
                return a, min(mss, b - a), False
        # (4) the rescue retransmission: once per recovery, the highest unSACKed data
        if (self._rescue is None or self.snd_una > self._rescue) and holes:
            a, b = holes[-1]
            start = max(a, b - mss)
            return start, b - start, True
        return None

    def _sack_send(self, now: float) -> None:
        """Send while cwnd - pipe allows a full segment (RFC 6675 5 (C))."""
        for _ in range(64):
            if self.cwnd - self._pipe() < self.send_mss:
                return
            seg = self._next_seg()
            if seg is None:
                return
            start, n, rescue = seg
            if n <= 0:
                return
            off = start - self.snd_una
            payload = bytes(self._sbuf[off : off + n])
            if start >= self.snd_max:
                flags = ACK | (PSH if start + n == self.snd_una + len(self._sbuf) else 0)
                self._out.append(self._segment(flags, start, payload))
                self.snd_nxt = self.snd_max = start + n
            else:
                self.stats_retransmits += 1
                self._rtx_ts = self._ts_now()
                self._rtt_seq = None
                self._out.append(self._segment(ACK, start, payload))
                if rescue:
                    self._rescue = self.recover
                else:
                    self._high_rxt = max(self._high_rxt, start + n)
            if self._rto_at is None:
                self._rto_at = now + self.rto

    def _sack_dupack(self, now: float) -> None:
        """A duplicate ACK with SACK information (RFC 6675 5)."""
        if self.in_recovery:
            self._sack_send(now)
            return
        if self.dupacks < 3 and not self._is_lost(self.snd_una):
            self._limited = self.dupacks * self.send_mss
            return
        if self.recover is not None and self.snd_una < self.recover:
            return  # still the aftermath of an earlier episode
        self._enter_sack_recovery(now)

    def _enter_sack_recovery(self, now: float) -> None:
        self._tlp_at = None
        self._limited = 0
        self.ssthresh = self._on_congestion(self.snd_max - self.snd_una, now)
        self.cwnd = self.ssthresh
        self.recover = self.snd_max
        self.in_recovery = self._sack_recovery = True
        self._rescue = None
        self.stats_fast_retransmits += 1
        self._retransmit_head(now)
        self._high_rxt = self.snd_una + min(self.send_mss, len(self._sbuf))
        self._rto_at = now + self.rto
        self._sack_send(now)

    def _receive_data(self, seq: int, seg: TcpSegment, now: float) -> None:
        payload = seg.payload
        fin = seg.fin
        if seq < self.rcv_nxt:
            cut = self.rcv_nxt - seq
            payload = payload[cut:]
            seq = self.rcv_nxt
        room = self._window()
        if seq - self.rcv_nxt + len(payload) > room:
            payload = payload[: max(0, room - (seq - self.rcv_nxt))]
            fin = False
        if payload and self.app_closed:
            # No reader any more: reset, as for a segment that reaches no
            # connection (RFC 9293 3.10.7.4, RFC 2525 2.17).
            self._out.append(TcpSegment(self.local_port, self.remote_port, seg.ack, 0, RST, 0))
            self._enter_closed("data arrived after close")
            return
        if seq == self.rcv_nxt:
            self._rbuf += payload
            self.rcv_nxt += len(payload)
            gap_filled = False
            while self._ooo:
                piece = self._ooo.pop(self.rcv_nxt, None)
                if piece is None:
                    # drop pieces now wholly behind RCV.NXT, trim a straddling one
                    stale = [s for s in self._ooo if s < self.rcv_nxt]
                    if not stale:
                        break
                    for s in stale:
                        data = self._ooo.pop(s)
                        if s + len(data) > self.rcv_nxt:
                            self._ooo[self.rcv_nxt] = data[self.rcv_nxt - s :]
                    continue
                self._rbuf += piece
                self.rcv_nxt += len(piece)
                gap_filled = True
            if fin or (self._ooo_fin is not None and self._ooo_fin == self.rcv_nxt):
                self._on_fin(now)
                return
            if gap_filled or payload == b"" or self._ooo:
                # RFC 5681 4.2: at once while a hole is open or just closed.
                self._send_ack(now)
                return
            self._unacked_segments += 1
            if self._unacked_segments >= 2:
                self._send_ack(now)
            elif self._dack_at is None:
                self._dack_at = now + self.config.delayed_ack
        else:
            if payload:
                have = self._ooo.get(seq)
                if have is None or len(have) < len(payload):
                    self._ooo[seq] = payload
                self._last_ooo = seq
                if seq in self._ooo_recent:
                    self._ooo_recent.remove(seq)
                self._ooo_recent.insert(0, seq)
                del self._ooo_recent[16:]
            if fin:
                self._ooo_fin = seq + len(payload)
            self._send_ack(now)  # immediate duplicate ACK for fast retransmit

    def _on_fin(self, now: float) -> None:
        self.rcv_nxt += 1
        self._ooo.clear()
        self._ooo_fin = None
        self.eof = True
        if self.state is State.ESTABLISHED:
            self.state = State.CLOSE_WAIT
        elif self.state is State.FIN_WAIT_1:
            if self.fin_acked:
                self._send_ack(now)
                self._enter_time_wait(now)
                return
            self.state = State.CLOSING
        elif self.state is State.FIN_WAIT_2:
            self._send_ack(now)
            self._enter_time_wait(now)
            return
        self._send_ack(now)

    def _enter_time_wait(self, now: float) -> None:
        self.state = State.TIME_WAIT
        self._rto_at = self._dack_at = self._fw2_at = self._persist_at = self._ka_at = None
        self._rack_at = self._tlp_at = None
        self._xmit.clear()
        self._tw_at = now + 2 * self.config.msl

    def _enter_closed(self, error: str | None) -> None:
        self.state = State.CLOSED
        if error is not None and self.error is None:
            self.error = error
        self._rto_at = self._dack_at = self._tw_at = self._fw2_at = self._persist_at = None
        self._rack_at = self._tlp_at = None
        self._xmit.clear()
        self._ka_at = None
        self._sbuf.clear()
        self._ooo.clear()
        if error is not None:
            self.eof = True
