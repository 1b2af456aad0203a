"""NSID (RFC 5001) and EDNS padding (RFC 7830, RFC 8467) in the server."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest
from conftest import ZONE, _stop, free_port, wait_for_dns

from mirage.dns import Authority, Edns, EdnsOption, Name, RRType, Zone, pull_message, read_zone
from mirage.dns._message import OPT_NSID, OPT_PADDING, make_query, push_message

AUTH = Authority([Zone.from_records(read_zone(ZONE))], nsid=b"ns-a.test")


def ask(options: tuple[EdnsOption, ...], *, encrypted: bool = False, tcp: bool = True) -> bytes:
    query = make_query(Name.from_text("www.example.com."), RRType.A, edns=Edns(options=options))
    (reply,) = AUTH.handle(push_message(query), tcp=tcp, encrypted=encrypted)
    return reply


def test_nsid_is_given_when_asked() -> None:
    edns = pull_message(ask((EdnsOption(OPT_NSID, b""),), tcp=False)).edns
    assert edns is not None and edns.option(OPT_NSID) == b"ns-a.test"
    edns = pull_message(ask(())).edns
    assert edns is not None and edns.option(OPT_NSID) is None  # not asked, not given
    plain = Authority([Zone.from_records(read_zone(ZONE))])  # no NSID configured
    query = make_query(Name.from_text("www.example.com."), RRType.A,
                       edns=Edns(options=(EdnsOption(OPT_NSID, b""),)))  # fmt: skip
    (reply,) = plain.handle(push_message(query))
    edns = pull_message(reply).edns
    assert edns is not None and edns.option(OPT_NSID) is None


@pytest.mark.parametrize("name", ["www.example.com.", "nope.example.com.", "txt.example.com."])
def test_padded_queries_over_tls_get_answers_in_blocks_of_468(name: str) -> None:
    pad = (EdnsOption(OPT_PADDING, bytes(40)),)
    query = make_query(Name.from_text(name), RRType.ANY, edns=Edns(options=pad))
    (reply,) = AUTH.handle(push_message(query), tcp=True, encrypted=True)
    assert len(reply) % 468 == 0
    edns = pull_message(reply).edns
    assert edns is not None and set(edns.option(OPT_PADDING) or b"x") == {0}
    # not over TLS, or the query not padded: no padding
    assert pull_message(ask(pad, encrypted=False)).edns.option(OPT_PADDING) is None  # type: ignore[union-attr]
    assert pull_message(ask((), encrypted=True)).edns.option(OPT_PADDING) is None  # type: ignore[union-attr]


def test_padding_never_passes_the_size_limit() -> None:
    msg = make_query(Name.from_text("www.example.com."), RRType.A, edns=Edns(padding=468))
    assert len(push_message(msg)) == 468
    assert len(push_message(msg, limit=300)) == 300


@pytest.fixture(scope="module")
def nsid_server() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mirage.dns", "serve", str(ZONE), "--port", str(port),
         "--nsid", "mirage-ns1"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_dns(port, proc)
        yield port
    finally:
        _stop(proc)


def test_kdig_nsid(nsid_server: int) -> None:
    kdig = shutil.which("kdig")
    if kdig is None:
        pytest.skip("needs kdig (Debian package knot-dnsutils)")
    for transport in ("+notcp", "+tcp"):
        out = subprocess.run([kdig, "@127.0.0.1", "-p", str(nsid_server), transport, "+nsid",
                              "www.example.com", "A"], capture_output=True, text=True,
                             timeout=30).stdout  # fmt: skip
        assert "NSID" in out and "mirage-ns1" in out, out
        assert "192.0.2.10" in out
