"""mirage-dns beside its peers, in one run, printing ratios.

1. Codec: parse and serialise a typical response, ours beside dnspython.
2. Authoritative UDP server: queries per second with dnsperf (or, without it, a
   bounded Python client loop) against our server, a dnslib zoneresolver server and
   NSD, each serving the same zone and pinned to one core when taskset exists.
3. Resolver cache hits: getaddrinfo on a cached name, ours beside dnspython's stub
   resolver with its cache.
4. Zone loading: a generated zone of ``--zone-records`` records, our parser beside
   ``named-compilezone``.

Every loop is bounded in count and time; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ZONE = """$ORIGIN bench.test.
$TTL 3600
@ SOA ns1 hostmaster 1 7200 3600 1209600 300
@ NS ns1
@ MX 10 mail
ns1 A 127.0.0.1
mail A 192.0.2.3
www A 192.0.2.10
www AAAA 2001:db8::10
alias CNAME www
txt TXT "hello world"
"""
QUERIES = [("www", "A"), ("www", "AAAA"), ("alias", "A"), ("@", "MX"), ("txt", "TXT"),
           ("nope", "A"), ("www", "MX")]  # fmt: skip


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def rate(fn: Callable[[], object], seconds: float = 1.0) -> float:
    """Calls per second of ``fn`` over about ``seconds``."""
    n, start = 0, time.perf_counter()
    while True:
        for _ in range(200):
            fn()
        n += 200
        spent = time.perf_counter() - start
        if spent >= seconds:
            return n / spent


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "n/a"


# -- 1. codec ------------------------------------------------------------------------


def bench_codec() -> None:
    import dns.message
    import dns.rrset

    from mirage.dns import pull_message, push_message

    q = dns.message.make_query("www.example.com.", "A", use_edns=0)
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("www.example.com.", 300, "IN", "CNAME", "web.example.com."))
    r.answer.append(
        dns.rrset.from_text("web.example.com.", 300, "IN", "A", "192.0.2.1", "192.0.2.2")
    )
    r.authority.append(dns.rrset.from_text("example.com.", 300, "IN", "NS", "ns1.example.com.",
                                           "ns2.example.com."))  # fmt: skip
    r.additional.append(dns.rrset.from_text("ns1.example.com.", 300, "IN", "A", "192.0.2.53"))
    wire = r.to_wire()
    ours_msg = pull_message(wire)
    theirs_msg = dns.message.from_wire(wire)
    print(f"codec (a 5-record response, {len(wire)} bytes), operations/s:")
    for what, ours, theirs in (
        ("parse", lambda: pull_message(wire), lambda: dns.message.from_wire(wire)),
        ("serialise", lambda: push_message(ours_msg), theirs_msg.to_wire),
    ):
        a, b = rate(ours), rate(theirs)
        print(f"  {what:10} mirage-dns {a:10.0f}   dnspython {b:10.0f}   ratio {ratio(a, b)}")


# -- 2. servers ----------------------------------------------------------------------


def pinned(argv: list[str], core: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core), *argv]
    return argv


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> bool:
    import dns.message
    import dns.query

    q = dns.message.make_query("www.bench.test.", "A")
    for _ in range(100):
        if proc.poll() is not None:
            return False
        try:
            dns.query.udp(q, "127.0.0.1", port=port, timeout=0.2)
            return True
        except Exception:
            time.sleep(0.1)
    return False


def query_rate(port: int, seconds: float, workdir: Path) -> tuple[float, str]:
    if shutil.which("dnsperf"):
        qfile = workdir / "queries.txt"
        qfile.write_text("".join(
            f"{'bench.test.' if n == '@' else n + '.bench.test.'} {t}\n" for n, t in QUERIES
        ))  # fmt: skip
        out = subprocess.run(
            pinned(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(qfile),
                    "-l", str(int(seconds)), "-c", "4", "-q", "32", "-t", "1"], 0),
            capture_output=True, text=True, timeout=seconds + 30, check=False,
        ).stdout  # fmt: skip
        for line in out.splitlines():
            if "Queries per second" in line:
                return float(line.split(":")[1]), "dnsperf"
        return 0.0, "dnsperf (no result)"
    import dns.message

    wires = [dns.message.make_query(f"{n}.bench.test.", t).to_wire() for n, t in QUERIES]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1.0)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds and n < 2_000_000:
            s.sendto(wires[n % len(wires)], ("127.0.0.1", port))
            try:
                s.recv(4096)
            except TimeoutError:
                pass
            n += 1
        return n / (time.perf_counter() - start), "python client, one in flight"


def bench_servers(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        zone = workdir / "bench.test.zone"
        zone.write_text(ZONE)
        servers: dict[str, list[str] | None] = {}
        port_of: dict[str, int] = {}
        ours = {
            "mirage-dns": [],
            "mirage-dns (no response cache)": ["--no-response-cache"],
            "mirage-dns (stack UDP)": ["--stack-udp"],
            "mirage-dns (stack UDP, no cache)": ["--stack-udp", "--no-response-cache"],
        }
        for name in (*ours, "dnslib", "nsd"):
            port_of[name] = free_port()
        for name, extra in ours.items():
            servers[name] = [sys.executable, "-m", "mirage.dns", "serve", str(zone),
                             "--port", str(port_of[name]), *extra]  # fmt: skip
        try:
            import dnslib  # noqa: F401

            servers["dnslib"] = [sys.executable, "-m", "dnslib.zoneresolver", "--zone", str(zone),
                                 "--address", "127.0.0.1", "--port", str(port_of["dnslib"]),
                                 "--log=-request,-reply,-truncated,-error"]  # fmt: skip
        except ImportError:
            servers["dnslib"] = None
        nsd = shutil.which("nsd") or ("/usr/sbin/nsd" if os.path.exists("/usr/sbin/nsd") else None)
        if nsd and os.geteuid() == 0:
            (workdir / "nsd.conf").write_text(
                f'server:\n  ip-address: 127.0.0.1@{port_of["nsd"]}\n  username: ""\n'
                f'  zonesdir: "{workdir}"\n  database: ""\n  pidfile: "{workdir}/nsd.pid"\n'
                f'  xfrdfile: "{workdir}/xfrd.state"\n  zonelistfile: "{workdir}/zone.list"\n'
                f'  logfile: "{workdir}/nsd.log"\n  server-count: 1\n  rrl-ratelimit: 0\n'
                "remote-control:\n  control-enable: no\n"
                "zone:\n  name: bench.test\n  zonefile: bench.test.zone\n"
            )
            servers["nsd"] = [nsd, "-d", "-c", str(workdir / "nsd.conf")]
        else:
            servers["nsd"] = None
        results: dict[str, float] = {}
        print(
            f"authoritative UDP server, queries/s over {seconds:.0f} s (server pinned to core 1):"
        )
        for name, argv in servers.items():
            if argv is None:
                print(
                    f"  {name:11} skipped (not installed{' or not root' if name == 'nsd' else ''})"
                )
                continue
            errors = workdir / f"{name}.stderr"
            with errors.open("wb") as err:
                proc = subprocess.Popen(pinned(argv, 1), stdout=subprocess.DEVNULL, stderr=err)
            try:
                if not wait_ready(port_of[name], proc):
                    tail = errors.read_text(errors="replace").strip().splitlines()[-3:]
                    print(f"  {name:31} did not start: {' / '.join(tail)}")
                    continue
                qps, how = query_rate(port_of[name], seconds, workdir)
                results[name] = qps
                print(f"  {name:31} {qps:12.0f} q/s   ({how})")
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for mine in ours:
            for peer in ("dnslib", "nsd"):
                if mine in results and peer in results:
                    print(f"  {mine} / {peer}: {ratio(results[mine], results[peer])}")


# -- 3. resolver cache hits ----------------------------------------------------------


def bench_resolver_cache() -> None:
    import dns.resolver

    from mirage.dns import Authority, Zone, parse_zone
    from mirage.dns.resolver import DnsResolver
    from mirage.dns.server import DnsServer
    from mirage.unix.stack import SocketStack

    port = free_port()
    zone = Zone.from_records(parse_zone(ZONE))

    async def ours() -> float:
        stack = await SocketStack.connect(ipv4="127.0.0.1")
        server = DnsServer(stack, Authority([zone]), port)
        await server.start()
        resolver = DnsResolver(stack, [("127.0.0.1", port)])
        await resolver.getaddrinfo("www.bench.test")
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < 1.0:
            for _ in range(100):
                await resolver.getaddrinfo("www.bench.test")
            n += 100
        spent = time.perf_counter() - start
        await resolver.disconnect()
        await server.stop()
        await stack.disconnect()
        return spent / n

    async def theirs() -> float:
        stack = await SocketStack.connect(ipv4="127.0.0.1")
        server = DnsServer(stack, Authority([zone]), port)
        await server.start()
        loop = asyncio.get_running_loop()

        def run() -> float:
            res = dns.resolver.Resolver(configure=False)
            res.nameservers = ["127.0.0.1"]
            res.port = port
            res.cache = dns.resolver.Cache()
            res.resolve("www.bench.test.", "A")
            res.resolve("www.bench.test.", "AAAA")
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < 1.0:
                for _ in range(100):
                    res.resolve("www.bench.test.", "A")
                    res.resolve("www.bench.test.", "AAAA")
                n += 100
            return (time.perf_counter() - start) / n

        try:
            return await loop.run_in_executor(None, run)
        finally:
            await server.stop()
            await stack.disconnect()

    a = asyncio.run(ours())
    b = asyncio.run(theirs())
    print("resolver cache hit (A and AAAA of one name), microseconds per lookup:")
    print(f"  mirage-dns getaddrinfo {a * 1e6:8.1f}   dnspython resolve x2 {b * 1e6:8.1f}"
          f"   speed ratio {ratio(b, a)}")  # fmt: skip


# -- 4. zone loading -----------------------------------------------------------------


def bench_zone_load(records: int) -> None:
    from mirage.dns import Zone, read_zone

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.zone"
        with path.open("w") as out:
            out.write("$ORIGIN big.test.\n$TTL 3600\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\n")
            out.write("ns1 A 192.0.2.1\n")
            for i in range(records):
                out.write(f"h{i} A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")
        start = time.perf_counter()
        Zone.from_records(read_zone(path))
        ours = time.perf_counter() - start
        print(f"zone load, {records} records, seconds:")
        line = f"  mirage-dns {ours:7.2f}"
        tool = shutil.which("named-compilezone")
        if tool:
            start = time.perf_counter()
            subprocess.run([tool, "-q", "-o", os.devnull, "big.test", str(path)], check=True,
                           timeout=600)  # fmt: skip
            theirs = time.perf_counter() - start
            line += f"   named-compilezone {theirs:7.2f}   speed ratio {ratio(theirs, ours)}"
        else:
            line += "   named-compilezone skipped (bind9-utils not installed)"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each qps run")
    parser.add_argument("--zone-records", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["codec", "servers", "resolver", "zone"],
                        action="append", help="run only these parts")  # fmt: skip
    args = parser.parse_args()
    parts = set(args.only or ["codec", "servers", "resolver", "zone"])
    if "codec" in parts:
        bench_codec()
    if "servers" in parts:
        bench_servers(args.seconds)
    if "resolver" in parts:
        bench_resolver_cache()
    if "zone" in parts:
        bench_zone_load(args.zone_records)


if __name__ == "__main__":
    main()
