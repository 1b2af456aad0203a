"""The recursive resolver against a hierarchy of real servers in a network namespace.

A root (NSD on 10.53.0.1), two TLDs (our server: test. on 10.53.0.2, net. on
10.53.0.4) and the leaves (NSD on 10.53.0.3) run inside a network namespace made for
the session; `mirage-dns resolve` runs inside it too, so no traffic leaves it.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DATA, nsd_conf, nsd_program

HIER = DATA / "hier"
ROOT, TLD, LEAF, NET = "10.53.0.1", "10.53.0.2", "10.53.0.3", "10.53.0.4"

READY = """
import socket, sys, time
query = bytes.fromhex("abcd0000000100000000000000000" "60001")
deadline = time.monotonic() + 20
waiting = set(sys.argv[1:])
while waiting and time.monotonic() < deadline:
    for address in list(waiting):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(query, (address, 53))
                if s.recv(4096)[:2] == query[:2]:
                    waiting.discard(address)
            except OSError:
                time.sleep(0.1)
sys.exit(1 if waiting else 0)
"""


class Namespace:
    def __init__(self, name: str) -> None:
        self.name = name

    def argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*argv), capture_output=True, text=True, timeout=timeout)

    def resolve(self, *names: str, anchor: str | None = None) -> str:
        extra = [f"--trust-anchor={anchor}"] if anchor else []
        done = self.run(sys.executable, "-m", "mirage.dns", "resolve", "--root-hints", ROOT,
                        *extra, *names)  # fmt: skip
        assert "Traceback" not in done.stderr, done.stderr
        return done.stdout


def _needs() -> str:
    nsd = nsd_program()
    if shutil.which("ip") is None:
        pytest.skip("needs `ip` (iproute2) to make a network namespace")
    return nsd


@contextlib.contextmanager
def running(
    work: Path,
    zones: dict[str, str],
    our_args: list[str] = (),  # type: ignore[assignment]
) -> Iterator[Namespace]:
    """The four servers in a new namespace; ``zones`` maps each origin to its file."""
    nsd = _needs()
    ns = Namespace(f"mdns-{uuid.uuid4().hex[:8]}")
    if subprocess.run(["ip", "netns", "add", ns.name], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run(ns.argv("ip", "link", "set", "lo", "up"), check=True)
        for address in (ROOT, TLD, LEAF, NET):
            subprocess.run(ns.argv("ip", "addr", "add", f"{address}/32", "dev", "lo"), check=True)
        for label, address, origins in (
            ("root", ROOT, ["."]),
            ("leaf", LEAF, ["example.test", "example.net", "glueless.test"]),
        ):
            conf = work / f"{label}.conf"
            state = work / label
            state.mkdir()
            conf.write_text(nsd_conf(address, work, state, {o: zones[o] for o in origins}))
            argv = ns.argv(nsd, "-d", "-c", str(conf))
            quiet = subprocess.DEVNULL
            procs.append(subprocess.Popen(argv, stdout=quiet, stderr=quiet))
        for address, origin in ((TLD, "test"), (NET, "net")):
            procs.append(subprocess.Popen(
                ns.argv(sys.executable, "-m", "mirage.dns", "serve", str(work / zones[origin]),
                        "--address", address, "--port", "53", *our_args),
                stdout=subprocess.DEVNULL,
            ))  # fmt: skip
        ready = ns.run(sys.executable, "-c", READY, ROOT, TLD, LEAF, NET)
        if ready.returncode != 0:
            raise RuntimeError("the servers in the namespace did not answer")
        yield ns
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        subprocess.run(["ip", "netns", "del", ns.name], capture_output=True)


ZONES = {
    ".": "root.zone", "test": "test.zone", "net": "net.zone",
    "example.test": "example.test.zone", "example.net": "example.net.zone",
    "glueless.test": "glueless.test.zone",
}  # fmt: skip


@pytest.fixture(scope="module")
def hierarchy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Namespace]:
    _needs()
    work = tmp_path_factory.mktemp("hier")
    for filename in ZONES.values():
        shutil.copy(HIER / filename, work / filename)
    with running(work, ZONES) as ns:
        yield ns


def blocks(output: str) -> list[list[str]]:
    """The output per name: its lines, from the ';; NAME TYPE ...' line on."""
    out: list[list[str]] = []
    for line in output.splitlines():
        if line.startswith(";; ") and not line.startswith(";; queries"):
            out.append([line])
        else:
            out[-1].append(line)
    return out


def queries(block: list[str]) -> int:
    return int(block[-1].removeprefix(";; queries "))


def test_resolves_down_the_hierarchy_and_caches(hierarchy: Namespace) -> None:
    www, again, aaaa = blocks(hierarchy.resolve("www.example.test", "www.example.test",
                                                "www.example.test/AAAA"))  # fmt: skip
    assert www[0].endswith("rcode 0")
    assert "www.example.test. 600 IN A 192.0.2.1" in www
    assert queries(www) == 3  # root (NSD), test. (ours), example.test. (NSD)
    assert queries(again) == 0
    assert "www.example.test. 600 IN AAAA 2001:db8::1" in aaaa and queries(aaaa) == 1


def test_cnames_glueless_and_negative_answers(hierarchy: Namespace) -> None:
    out = blocks(hierarchy.resolve("alias.example.test", "host.glueless.test",
                                   "nope.example.test", "nope.example.test",
                                   "www.example.test/TXT", "gone.example.net"))  # fmt: skip
    alias, glueless, nx, nx_again, nodata, gone = out
    assert "alias.example.test. 600 IN CNAME www.example.net." in alias
    assert "www.example.net. 600 IN A 192.0.2.2" in alias
    assert "host.glueless.test. 600 IN A 192.0.2.3" in glueless
    assert nx[0].endswith("rcode 3") and queries(nx) >= 1
    assert nx_again[0].endswith("rcode 3") and queries(nx_again) == 0
    assert nodata[0].endswith("rcode 0") and len(nodata) == 2
    assert gone[0].endswith("rcode 3")
    assert "gone.example.net. 600 IN CNAME nothing.example.test." in gone


def test_lame_and_cyclic_delegations_fail(hierarchy: Namespace) -> None:
    lame, cycle = blocks(hierarchy.resolve("www.lame.test", "www.cycle.test"))
    assert "no server of lame.test. gave a usable answer" in lame[0]
    assert "cycle" in cycle[0] and "rcode" not in cycle[0]
    assert queries(cycle) < 20


# -- DNSSEC: a signed root (NSD, dnssec-signzone), test. signed online by our server,
# example.test. signed with NSEC3 (NSD, dnssec-signzone); net. and glueless.test. not


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"needs {name} (Debian package bind9-utils)")
    return path


@pytest.fixture(scope="module")
def signed_hierarchy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Namespace, str]]:
    _needs()
    keygen, signzone, dsfromkey = (
        tool(t) for t in ("dnssec-keygen", "dnssec-signzone", "dnssec-dsfromkey")
    )
    work = tmp_path_factory.mktemp("signed-hier")
    for filename in ZONES.values():
        shutil.copy(HIER / filename, work / filename)

    def key(origin: str) -> Path:
        out = subprocess.run([keygen, "-q", "-a", "ECDSAP256SHA256", "-f", "KSK", "-K", str(work),
                              origin], check=True, capture_output=True, text=True)  # fmt: skip
        return work / out.stdout.strip()

    def ds(base: Path) -> str:
        return subprocess.run([dsfromkey, "-2", f"{base}.key"], check=True, capture_output=True,
                              text=True).stdout  # fmt: skip

    def sign(origin: str, filename: str, *extra: str) -> str:
        subprocess.run([signzone, "-q", "-z", "-K", str(work), "-S", "-d", str(work), "-o", origin,
                        *extra, "-f", str(work / (filename + ".signed")), str(work / filename)],
                       check=True, capture_output=True, cwd=work)  # fmt: skip
        return filename + ".signed"

    root_key, test_key, leaf_key = key("."), key("test"), key("example.test")
    with (work / "test.zone").open("a") as f:
        f.write(ds(leaf_key))
    with (work / "root.zone").open("a") as f:
        f.write(ds(test_key))
    zones = dict(ZONES)
    zones["example.test"] = sign("example.test", "example.test.zone", "-3", "-", "-H", "0")
    zones["."] = sign(".", "root.zone")
    anchor = ds(root_key).strip()
    with running(work, zones, ["--dnssec-key", f"{test_key}.private"]) as ns:
        yield ns, anchor


def test_validates_through_nsd_and_our_online_signing(
    signed_hierarchy: tuple[Namespace, str],
) -> None:
    ns, anchor = signed_hierarchy
    out = blocks(ns.resolve("www.example.test", "nope.example.test", "www.example.test/TXT",
                            "nothing.test", "alias.example.test", "host.glueless.test",
                            anchor=anchor))  # fmt: skip
    www, nope, nodata, nothing, alias, glueless = out
    assert www[0].endswith("rcode 0 secure") and "192.0.2.1" in www[1]
    assert nope[0].endswith("rcode 3 secure")  # NSEC3 from NSD
    assert nodata[0].endswith("rcode 0 secure")
    assert nothing[0].endswith("rcode 3 secure")  # NSEC from our server
    assert alias[0].endswith("rcode 0")  # into the unsigned net.: insecure
    assert glueless[0].endswith("rcode 0")  # our server proves there is no DS
    assert "192.0.2.3" in glueless[1]


def test_a_wrong_anchor_gives_servfail(signed_hierarchy: tuple[Namespace, str]) -> None:
    ns, anchor = signed_hierarchy
    parts = anchor.split()
    wrong = " ".join([*parts[:-1], "00" * 32])
    (www,) = blocks(ns.resolve("www.example.test", anchor=wrong))
    assert "DNSSEC" in www[0] and "rcode" not in www[0]
