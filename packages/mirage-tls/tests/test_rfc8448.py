"""Known answers from RFC 8448 section 3 (Simple 1-RTT Handshake): the key schedule
from the published shared secret and transcript hashes, and the published
ServerHello through our decoder."""

from __future__ import annotations

from mirage.tls import _messages as m
from mirage.tls._crypto import SUITES, hkdf_expand_label
from mirage.tls._keyschedule import KeySchedule

H = bytes.fromhex

SERVER_HELLO = H(
    "020000560303a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155772ed3e269280013010000"
    "2e00330024001d0020c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f002b"
    "00020304"
)
ECDHE = H("8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d")
TH_HELLO = H("860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8")
TH_SERVER_FINISHED = H("9608102a0f1ccc6db6250b7b7e417b1a000eaada3daae4777a7686c9ff83df13")
C_HS = H("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21")
S_HS = H("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
S_HS_KEY = H("3fce516009c21727d0f2e4e86ee403bc")
S_HS_IV = H("5d313eb2671276ee13000b30")
C_HS_KEY = H("dbfaa693d1762c5b666af5d950258d01")
C_HS_IV = H("5bd3c71b836e0b76bb73265f")
C_AP = H("9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5")
S_AP = H("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643")

SUITE = SUITES[0x1301]


def test_server_hello_decodes() -> None:
    msg_type, body, raw = m.pull_handshake(bytearray(SERVER_HELLO)) or (0, b"", b"")
    assert msg_type == 2 and raw == SERVER_HELLO
    sh = m.pull_server_hello(body)
    assert sh.cipher_suite == 0x1301
    assert sh.supported_version == 0x0304
    assert sh.key_share == m.KeyShareEntry(
        0x001D, H("c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f")
    )
    assert not sh.is_hello_retry_request


def test_key_schedule() -> None:
    schedule = KeySchedule(SUITE)
    schedule.enter_handshake(ECDHE)
    assert schedule.derive_secret(b"c hs traffic", TH_HELLO) == C_HS
    assert schedule.derive_secret(b"s hs traffic", TH_HELLO) == S_HS
    alg = SUITE.new_hash()
    assert hkdf_expand_label(alg, S_HS, b"key", b"", 16) == S_HS_KEY
    assert hkdf_expand_label(alg, S_HS, b"iv", b"", 12) == S_HS_IV
    assert hkdf_expand_label(alg, C_HS, b"key", b"", 16) == C_HS_KEY
    assert hkdf_expand_label(alg, C_HS, b"iv", b"", 12) == C_HS_IV
    schedule.enter_master()
    assert schedule.derive_secret(b"c ap traffic", TH_SERVER_FINISHED) == C_AP
    assert schedule.derive_secret(b"s ap traffic", TH_SERVER_FINISHED) == S_AP
