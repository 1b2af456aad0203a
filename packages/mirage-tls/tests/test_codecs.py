"""Message codecs: round trips, and totality of every decoder under hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mirage.tls import AlertDescription, DecodeError, IllegalParameter, TlsAlert
from mirage.tls import _messages as m
from mirage.tls._constants import HRR_RANDOM
from mirage.tls._record import RecordLayer, decode_inner, encode_inner, pull_record_header

ALLOWED = {AlertDescription.decode_error, AlertDescription.illegal_parameter}

u16s = st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=8).map(tuple)
opaque = st.binary(min_size=1, max_size=40)
names = st.from_regex(r"[a-z][a-z0-9]{0,10}(\.[a-z]{1,5}){0,2}", fullmatch=True)
shares = st.lists(
    st.builds(m.KeyShareEntry, st.integers(0, 0xFFFF), opaque),
    max_size=3,
    unique_by=lambda e: e.group,
).map(tuple)

client_hellos = st.builds(
    m.ClientHello,
    random=st.binary(min_size=32, max_size=32),
    legacy_session_id=st.binary(max_size=32),
    cipher_suites=u16s,
    server_name=st.none() | names,
    supported_groups=st.none() | u16s,
    signature_algorithms=st.none() | u16s,
    key_share=st.none() | shares,
    supported_versions=st.none() | u16s,
    psk_key_exchange_modes=st.none()
    | st.lists(st.integers(0, 255), min_size=1, max_size=3).map(tuple),
    alpn_protocols=st.none() | st.lists(opaque, min_size=1, max_size=3).map(tuple),
    cookie=st.none() | opaque,
    early_data=st.booleans(),
    record_size_limit=st.none() | st.integers(0, 0xFFFF),
    extended_master_secret=st.booleans(),
    renegotiation_info=st.none() | st.binary(max_size=12),
    pre_shared_key=st.none()
    | st.builds(
        m.OfferedPsks,
        st.lists(st.tuples(opaque, st.integers(0, 2**32 - 1)), min_size=1, max_size=1).map(tuple),
        st.lists(st.binary(min_size=32, max_size=48), min_size=1, max_size=1).map(tuple),
    ),
    other_extensions=st.lists(
        st.tuples(st.integers(0x1000, 0x1100), st.binary(max_size=10)),
        max_size=2,
        unique_by=lambda e: e[0],
    ).map(tuple),
)


@settings(max_examples=150)
@given(client_hellos)
def test_client_hello_round_trip(hello: m.ClientHello) -> None:
    assert m.pull_client_hello(m.push_client_hello(hello)) == hello


server_hellos = st.builds(
    m.ServerHello,
    random=st.binary(min_size=32, max_size=32),
    cipher_suite=st.integers(0, 0xFFFF),
    legacy_session_id_echo=st.binary(max_size=32),
    supported_version=st.none() | st.integers(0, 0xFFFF),
    key_share=st.none() | st.builds(m.KeyShareEntry, st.integers(0, 0xFFFF), opaque),
    pre_shared_key=st.none() | st.integers(0, 0xFFFF),
)


@given(server_hellos)
def test_server_hello_round_trip(hello: m.ServerHello) -> None:
    assert m.pull_server_hello(m.push_server_hello(hello)) == hello


@given(st.integers(0, 0xFFFF), st.none() | opaque)
def test_hello_retry_request_round_trip(group: int, cookie: bytes | None) -> None:
    hrr = m.ServerHello(
        HRR_RANDOM, 0x1301, selected_group=group, cookie=cookie, supported_version=0x0304
    )
    back = m.pull_server_hello(m.push_server_hello(hrr))
    assert back == hrr and back.is_hello_retry_request


@given(
    st.builds(
        m.EncryptedExtensions,
        alpn_protocol=st.none() | opaque,
        server_name_ack=st.booleans(),
        supported_groups=st.none() | u16s,
        early_data=st.booleans(),
        record_size_limit=st.none() | st.integers(0, 0xFFFF),
    )
)
def test_encrypted_extensions_round_trip(ee: m.EncryptedExtensions) -> None:
    assert m.pull_encrypted_extensions(m.push_encrypted_extensions(ee)) == ee


@given(st.binary(max_size=8), st.lists(st.binary(min_size=1, max_size=30), max_size=3))
def test_certificate_round_trip(context: bytes, ders: list[bytes]) -> None:
    cert = m.Certificate(context, tuple(m.CertificateEntry(d) for d in ders))
    assert m.pull_certificate(m.push_certificate(cert)) == cert


@given(st.binary(max_size=8), u16s)
def test_certificate_request_round_trip(context: bytes, algs: tuple[int, ...]) -> None:
    cr = m.CertificateRequest(context, algs)
    assert m.pull_certificate_request(m.push_certificate_request(cr)) == cr


@given(st.integers(0, 0xFFFF), opaque)
def test_certificate_verify_round_trip(alg: int, sig: bytes) -> None:
    cv = m.CertificateVerify(alg, sig)
    assert m.pull_certificate_verify(m.push_certificate_verify(cv)) == cv


@given(st.sampled_from([32, 48, 64]).flatmap(lambda n: st.binary(min_size=n, max_size=n)))
def test_finished_round_trip(data: bytes) -> None:
    assert m.pull_finished(m.push_finished(m.Finished(data))) == m.Finished(data)


@given(
    st.builds(
        m.NewSessionTicket,
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.binary(max_size=8),
        opaque,
        st.none() | st.integers(0, 2**32 - 1),
    )
)
def test_new_session_ticket_round_trip(t: m.NewSessionTicket) -> None:
    assert m.pull_new_session_ticket(m.push_new_session_ticket(t)) == t


@given(st.booleans())
def test_key_update_round_trip(requested: bool) -> None:
    assert m.pull_key_update(m.push_key_update(m.KeyUpdate(requested))) == m.KeyUpdate(requested)


def test_key_update_bad_value_is_illegal_parameter() -> None:
    with pytest.raises(IllegalParameter):
        m.pull_key_update(b"\x02")


@pytest.mark.parametrize("puller", sorted(m.PULLERS.items()), ids=str)
@settings(max_examples=200)
@given(data=st.binary(max_size=120))
@example(data=b"")
@example(data=b"\x03\x03" + bytes(32) + b"\x00\x00\x02\x13\x01\x01\x00\x00\x04\x00\x00\x00\x00")
def test_every_decoder_is_total(puller: tuple[int, object], data: bytes) -> None:
    _, pull = puller
    try:
        pull(data)  # type: ignore[operator]
    except TlsAlert as e:
        assert e.description in ALLOWED


def test_duplicate_extension_is_decode_error() -> None:
    body = m.push_client_hello(
        m.ClientHello(
            bytes(32), cipher_suites=(0x1301,), other_extensions=((0x1234, b""), (0x1234, b""))
        )
    )
    with pytest.raises(DecodeError):
        m.pull_client_hello(body)


def test_pre_shared_key_must_be_last() -> None:
    hello = m.ClientHello(
        bytes(32),
        cipher_suites=(0x1301,),
        pre_shared_key=m.OfferedPsks(((b"id", 0),), (bytes(32),)),
    )
    body = bytearray(m.push_client_hello(hello))
    # append an extension after pre_shared_key and fix the extensions length
    extra = b"\x12\x34\x00\x00"
    ext_len_pos = 2 + 32 + 1 + 2 + 2 + 2
    length = int.from_bytes(body[ext_len_pos : ext_len_pos + 2], "big") + 4
    body[ext_len_pos : ext_len_pos + 2] = length.to_bytes(2, "big")
    with pytest.raises(IllegalParameter):
        m.pull_client_hello(bytes(body) + extra)


@settings(max_examples=300)
@given(st.binary(max_size=5))
def test_record_header_is_total(header: bytes) -> None:
    try:
        pull_record_header(header)
    except TlsAlert as e:
        assert e.description in {
            AlertDescription.decode_error,
            AlertDescription.unexpected_message,
            AlertDescription.record_overflow,
        }


@given(st.integers(20, 23), st.binary(max_size=50), st.integers(0, 30))
def test_inner_plaintext_round_trip(ctype: int, data: bytes, padding: int) -> None:
    assert decode_inner(encode_inner(ctype, data, padding)) == (ctype, data)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_record_layer_reading_is_total(data: bytes) -> None:
    layer = RecordLayer()
    layer.feed(data)
    try:
        while layer.next_record() is not None:
            pass
    except TlsAlert:
        pass


def test_record_overflow() -> None:
    from mirage.tls import RecordOverflow

    layer = RecordLayer()
    layer.feed(b"\x16\x03\x03" + (2**14 + 257).to_bytes(2, "big"))
    with pytest.raises(RecordOverflow):
        layer.next_record()
    layer = RecordLayer()
    layer.feed(b"\x16\x03\x03" + (2**14 + 1).to_bytes(2, "big") + bytes(2**14 + 1))
    with pytest.raises(RecordOverflow):
        layer.next_record()


def test_fragmentation_at_the_limit() -> None:
    layer = RecordLayer()
    out = layer.write(22, b"x" * (2**14 * 2 + 1))
    sizes = []
    reader = RecordLayer()
    reader.feed(out)
    reader.read_limit = 2**14
    while (rec := reader.next_record()) is not None:
        sizes.append(len(rec[1]))
    assert sizes == [2**14, 2**14, 1]


def test_aead_nonce_is_iv_xor_sequence() -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from mirage.tls._crypto import SUITES, Aead

    key, iv = bytes(range(16)), bytes(range(100, 112))
    aead = Aead(SUITES[0x1301], key, iv)
    aead.seal(b"a", b"")
    sealed = aead.seal(b"b", b"ad")
    nonce = (int.from_bytes(iv, "big") ^ 1).to_bytes(12, "big")
    assert sealed == AESGCM(key).encrypt(nonce, b"b", b"ad")
