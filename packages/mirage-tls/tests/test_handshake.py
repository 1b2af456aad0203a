"""Client and server of the engine against each other, in memory."""

from __future__ import annotations

import datetime
import itertools

import pytest
from tls_certs import NOW, NOW_TS, Pki, make_pki
from tls_pair import Pair

from mirage.tls import (
    AlertDescription,
    BadCertificate,
    BadRecordMac,
    CertificateExpired,
    CertificateRequired,
    CipherSuite,
    ConnectionClosed,
    DataReceived,
    HandshakeComplete,
    HandshakeFailure,
    KeysUpdated,
    NamedGroup,
    NoApplicationProtocol,
    PeerAlert,
    State,
    TlsAlert,
    TlsConfig,
    TlsConnection,
    TlsUsageError,
    UnexpectedMessage,
    UnknownCa,
)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


def done(events: list[object]) -> HandshakeComplete:
    (hc,) = [e for e in events if isinstance(e, HandshakeComplete)]
    return hc


SUITES = list(CipherSuite)[:3]
GROUPS = [NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1, NamedGroup.x448]
KINDS = ["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa"]


@pytest.mark.parametrize(("suite", "group"), list(itertools.product(SUITES, GROUPS)))
def test_every_suite_and_group(pki: Pki, suite: int, group: int) -> None:
    leaf = pki.leaf()
    pair = Pair(
        TlsConfig(trust_store=(pki.root,), cipher_suites=(suite,), key_share_groups=(group,)),
        TlsConfig(certificates=(leaf,)),
    ).handshake()
    hc = done(pair.client_events)
    assert (hc.cipher_suite, hc.group, hc.hello_retry) == (suite, group, False)
    assert done(pair.server_events).cipher_suite == suite
    pair.client.send(b"ping")
    pair.server.send(b"pong" * 5000)
    pair.step()
    assert pair.server_data() == b"ping"
    assert pair.client_data() == b"pong" * 5000


@pytest.fixture(scope="module")
def leaves(pki: Pki) -> dict[str, object]:
    return {kind: pki.leaf(kind=kind) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_every_certificate_key_type(pki: Pki, leaves: dict[str, object], kind: str) -> None:
    pair = Pair(
        TlsConfig(trust_store=(pki.root,)),
        TlsConfig(certificates=(leaves[kind],)),  # type: ignore[arg-type]
    ).handshake()
    hc = done(pair.client_events)
    assert hc.peer_certificates[0] == leaves[kind].chain[0]  # type: ignore[attr-defined]
    expected = {
        "ecdsa-p256": 0x0403,
        "ecdsa-p384": 0x0503,
        "ed25519": 0x0807,
        "rsa": 0x0804,
    }[kind]
    assert hc.signature_scheme == expected


def test_hello_retry_request(pki: Pki) -> None:
    pair = Pair(
        TlsConfig(trust_store=(pki.root,), key_share_groups=(NamedGroup.x25519,)),
        TlsConfig(certificates=(pki.leaf(),), groups=(NamedGroup.secp384r1,)),
    ).handshake()
    hc = done(pair.client_events)
    assert hc.hello_retry and hc.group == NamedGroup.secp384r1
    pair.client.send(b"after retry")
    pair.step()
    assert pair.server_data() == b"after retry"


def test_no_group_in_common(pki: Pki) -> None:
    pair = Pair(
        TlsConfig(trust_store=(pki.root,), groups=(NamedGroup.x25519,)),
        TlsConfig(certificates=(pki.leaf(),), groups=(NamedGroup.x448,)),
    )
    with pytest.raises(HandshakeFailure):
        pair.handshake()
    with pytest.raises(PeerAlert) as info:
        pair.client.receive_data(pair.server.data_to_send(), NOW_TS)
    assert info.value.description == AlertDescription.handshake_failure


def test_alpn(pki: Pki) -> None:
    pair = Pair(
        TlsConfig(trust_store=(pki.root,), alpn_protocols=(b"http/1.1", b"h2")),
        TlsConfig(certificates=(pki.leaf(),), alpn_protocols=(b"h2", b"http/1.1")),
    ).handshake()
    assert done(pair.client_events).alpn_protocol == b"h2"
    assert pair.server.alpn_protocol == b"h2"
    none = Pair(
        TlsConfig(trust_store=(pki.root,)),
        TlsConfig(certificates=(pki.leaf(),), alpn_protocols=(b"h2",)),
    )
    none.handshake()
    assert done(none.client_events).alpn_protocol is None
    bad = Pair(
        TlsConfig(trust_store=(pki.root,), alpn_protocols=(b"spdy/1",)),
        TlsConfig(certificates=(pki.leaf(),), alpn_protocols=(b"h2",)),
    )
    with pytest.raises(NoApplicationProtocol):
        bad.handshake()


def test_sni_selects_the_certificate(pki: Pki) -> None:
    a = pki.leaf(("a.example",))
    b = pki.leaf(("*.b.example",), kind="rsa")
    server = TlsConfig(certificates=(a, b))
    for name, leaf in (("a.example", a), ("www.b.example", b)):
        pair = Pair(TlsConfig(trust_store=(pki.root,)), server, server_name=name).handshake()
        assert done(pair.client_events).peer_certificates[0] == leaf.chain[0]
        assert done(pair.server_events).server_name == name
    # an unknown name gets the first certificate, which the client then rejects
    pair = Pair(TlsConfig(trust_store=(pki.root,)), server, server_name="c.example")
    with pytest.raises(BadCertificate, match=r"CN=a\.example"):
        pair.handshake()


def test_ip_address_server_name(pki: Pki) -> None:
    pair = Pair(
        TlsConfig(trust_store=(pki.root,)),
        TlsConfig(certificates=(pki.leaf(("127.0.0.1",)),)),
        server_name="127.0.0.1",
    ).handshake()
    assert done(pair.client_events)


def test_unknown_ca(pki: Pki) -> None:
    other = make_pki()
    pair = Pair(TlsConfig(trust_store=(other.root,)), TlsConfig(certificates=(pki.leaf(),)))
    with pytest.raises(UnknownCa, match="CN=localhost"):
        pair.handshake()
    assert pair.client.state is State.FAILED
    with pytest.raises(PeerAlert) as info:
        pair.server.receive_data(pair.client.data_to_send(), NOW_TS)
    assert info.value.description == AlertDescription.unknown_ca


def test_expired_certificate(pki: Pki) -> None:
    old = pki.leaf(not_before=NOW - datetime.timedelta(days=400), days=30)
    pair = Pair(TlsConfig(trust_store=(pki.root,)), TlsConfig(certificates=(old,)))
    with pytest.raises(CertificateExpired):
        pair.handshake()


def test_no_verification_when_disabled(pki: Pki) -> None:
    pair = Pair(
        TlsConfig(verify_peer=False), TlsConfig(certificates=(pki.leaf(),)), server_name=None
    ).handshake()
    assert done(pair.client_events)


def test_client_needs_a_name_to_verify() -> None:
    with pytest.raises(TlsUsageError):
        TlsConnection(TlsConfig(), server_name=None)


@pytest.mark.parametrize("kind", ["ecdsa-p256", "rsa", "ed25519"])
def test_client_certificate(pki: Pki, kind: str) -> None:
    client_leaf = pki.leaf(("client",), kind=kind, client=True)
    pair = Pair(
        TlsConfig(trust_store=(pki.root,), certificates=(client_leaf,)),
        TlsConfig(
            certificates=(pki.leaf(),), trust_store=(pki.root,), require_client_certificate=True
        ),
    ).handshake()
    assert done(pair.server_events).peer_certificates[0] == client_leaf.chain[0]


def test_client_certificate_required_but_absent(pki: Pki) -> None:
    pair = Pair(
        TlsConfig(trust_store=(pki.root,)),
        TlsConfig(
            certificates=(pki.leaf(),), trust_store=(pki.root,), require_client_certificate=True
        ),
    )
    with pytest.raises(CertificateRequired):
        pair.handshake()


def test_client_certificate_optional(pki: Pki) -> None:
    pair = Pair(
        TlsConfig(trust_store=(pki.root,)),
        TlsConfig(
            certificates=(pki.leaf(),), trust_store=(pki.root,), request_client_certificate=True
        ),
    ).handshake()
    assert done(pair.server_events).peer_certificates == ()


def test_key_update_both_ways(pki: Pki) -> None:
    pair = Pair(
        TlsConfig(trust_store=(pki.root,)), TlsConfig(certificates=(pki.leaf(),))
    ).handshake()
    for i in range(3):
        pair.client.key_update(request_peer=True)
        pair.client.send(b"c%d" % i)
        pair.step()
        pair.server.send(b"s%d" % i)
        pair.step()
    assert pair.server_data() == b"c0c1c2"
    assert pair.client_data() == b"s0s1s2"
    assert [e.requested for e in pair.server_events if isinstance(e, KeysUpdated)] == [True] * 3
    assert [e.requested for e in pair.client_events if isinstance(e, KeysUpdated)] == [False] * 3


def test_close_notify_is_a_half_close(pki: Pki) -> None:
    pair = Pair(
        TlsConfig(trust_store=(pki.root,)), TlsConfig(certificates=(pki.leaf(),))
    ).handshake()
    pair.client.send(b"last")
    pair.client.close()
    pair.step()
    assert pair.server_data() == b"last"
    assert isinstance(pair.server_events[-1], ConnectionClosed)
    with pytest.raises(TlsUsageError):
        pair.client.send(b"more")
    pair.server.send(b"reply")
    pair.server.close()
    pair.step()
    assert pair.client_data() == b"reply"
    assert isinstance(pair.client_events[-1], ConnectionClosed)


def test_padding_and_record_size_limit(pki: Pki) -> None:
    pair = Pair(
        TlsConfig(trust_store=(pki.root,), padding=100, record_size_limit=1000),
        TlsConfig(certificates=(pki.leaf(),), padding=7, record_size_limit=512),
    ).handshake()
    pair.client.send(b"x" * 3000)
    wire = pair.client.data_to_send()
    # records of at most 511 content bytes + type + padding, each with a 5-byte header
    assert len(wire) > 3000 + 6 * (5 + 16 + 1)
    pair.server.receive_data(wire, NOW_TS)
    pair.server.send(b"y" * 3000)
    pair.step()
    assert pair.server_data() == b"x" * 3000
    assert pair.client_data() == b"y" * 3000


def test_send_before_handshake_is_a_local_error(pki: Pki) -> None:
    conn = TlsConnection(TlsConfig(trust_store=(pki.root,)), server_name="localhost")
    with pytest.raises(TlsUsageError):
        conn.send(b"early")
    assert conn.data_to_send() == b""


def test_tampered_record_is_bad_record_mac(pki: Pki) -> None:
    pair = Pair(
        TlsConfig(trust_store=(pki.root,)), TlsConfig(certificates=(pki.leaf(),))
    ).handshake()
    pair.client.send(b"secret")
    wire = bytearray(pair.client.data_to_send())
    wire[-1] ^= 1
    with pytest.raises(BadRecordMac):
        pair.server.receive_data(bytes(wire), NOW_TS)
    pair.collect()
    assert pair.server_data() == b""
    alert = pair.server.data_to_send()
    with pytest.raises(PeerAlert) as info:
        pair.client.receive_data(alert, NOW_TS)
    assert info.value.description == AlertDescription.bad_record_mac


def test_out_of_order_message_is_unexpected(pki: Pki) -> None:
    server = TlsConnection(TlsConfig(certificates=(pki.leaf(),)), server_side=True)
    finished = b"\x16\x03\x03\x00\x24\x14\x00\x00\x20" + bytes(32)
    with pytest.raises(UnexpectedMessage):
        server.receive_data(finished, NOW_TS)
    assert server.data_to_send() == b"\x15\x03\x03\x00\x02\x02\x0a"


def test_application_data_before_keys(pki: Pki) -> None:
    server = TlsConnection(TlsConfig(certificates=(pki.leaf(),)), server_side=True)
    with pytest.raises(UnexpectedMessage):
        server.receive_data(b"\x17\x03\x03\x00\x01x", NOW_TS)


def test_byte_at_a_time(pki: Pki) -> None:
    client = TlsConnection(TlsConfig(trust_store=(pki.root,)), server_name="localhost")
    server = TlsConnection(TlsConfig(certificates=(pki.leaf(),)), server_side=True)
    client.start()
    for _ in range(4):
        for b in client.data_to_send():
            server.receive_data(bytes([b]), NOW_TS)
        for b in server.data_to_send():
            client.receive_data(bytes([b]), NOW_TS)
    assert client.state is State.CONNECTED and server.state is State.CONNECTED
    client.send(b"hi")
    server.receive_data(client.data_to_send(), NOW_TS)
    events = []
    while (e := server.next_event()) is not None:
        events.append(e)
    assert DataReceived(b"hi") in events


@pytest.mark.parametrize(("kind", "scheme"), [("ecdsa-p521", 0x0603), ("ed448", 0x0808)])
def test_more_key_types(pki: Pki, kind: str, scheme: int) -> None:
    pair = Pair(TlsConfig(trust_store=(pki.root,)), TlsConfig(certificates=(pki.leaf(kind=kind),)))
    pair.handshake()
    assert done(pair.client_events).signature_scheme == scheme


def test_secp521r1_when_enabled(pki: Pki) -> None:
    pair = Pair(
        TlsConfig(trust_store=(pki.root,), groups=(NamedGroup.secp521r1,), key_share_groups=()),
        TlsConfig(certificates=(pki.leaf(),), groups=(NamedGroup.secp521r1,)),
    ).handshake()
    hc = done(pair.client_events)
    assert hc.group == NamedGroup.secp521r1 and hc.hello_retry


def test_a_server_certificate_is_no_client_certificate(pki: Pki) -> None:
    wrong = pki.leaf(("client",), client=False)  # serverAuth only
    pair = Pair(
        TlsConfig(trust_store=(pki.root,), certificates=(wrong,)),
        TlsConfig(
            certificates=(pki.leaf(),), trust_store=(pki.root,), require_client_certificate=True
        ),
    )
    with pytest.raises(TlsAlert) as info:
        pair.handshake()
    assert info.value.description in (
        AlertDescription.bad_certificate,
        AlertDescription.unknown_ca,
        AlertDescription.unsupported_certificate,
    )


def test_close_before_the_handshake_abandons_it(pki: Pki) -> None:
    client = TlsConnection(TlsConfig(trust_store=(pki.root,)), server_name="localhost")
    client.start()
    client.close()
    assert client.state is State.CLOSED
    assert client.data_to_send().endswith(b"\x15\x03\x03\x00\x02\x01\x00")
    client.receive_data(b"anything", NOW_TS)  # ignored
