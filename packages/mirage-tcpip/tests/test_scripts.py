"""The packetdrill-style scripts (tests/scripts/*.pkt) against our TCP core on a
virtual clock, and the script language's parser: total over any text, and clear
errors naming the line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mirage.tcpip.script import CoreBackend, ScriptError, parse, parse_file, run_script

SCRIPTS = sorted((Path(__file__).parent / "scripts").glob("*.pkt"))


def test_enough_scripts() -> None:
    assert len(SCRIPTS) >= 150


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_script_on_our_core(path: Path) -> None:
    run_script(parse_file(path), CoreBackend())


PASSIVE = """0 listen
+0 < S 0:0(0) win 65535 <mss 1000>
+0 > S. 0:0(0) ack 1 <mss 1460>
+0.01 < . 1:1(0) ack 1 win 65535
+0 accept
"""


def test_a_wrong_expectation_fails_naming_the_line() -> None:
    script = parse(PASSIVE + "+0 write 100\n+0 > P. 1:101(100) ack 2\n", "wrong")
    with pytest.raises(ScriptError) as info:
        run_script(script, CoreBackend())
    assert info.value.line == 7
    assert "ack 1, not 2" in str(info.value)


def test_a_missing_segment_fails() -> None:
    script = parse(PASSIVE + "+0 > P. 1:101(100) ack 1\n", "missing")
    with pytest.raises(ScriptError, match="none came"):
        run_script(script, CoreBackend())


def test_an_unexpected_segment_fails() -> None:
    script = parse(PASSIVE + "+0 write 100\n+1 state ESTABLISHED\n", "unexpected")
    with pytest.raises(ScriptError, match="unexpected segment"):
        run_script(script, CoreBackend())


def test_too_early_fails() -> None:
    script = parse(PASSIVE + "+0 write 100\n+0.5~1 > P. 1:101(100) ack 1\n", "early")
    with pytest.raises(ScriptError, match="before its window"):
        run_script(script, CoreBackend())


def test_a_failing_call_fails() -> None:
    script = parse(PASSIVE + "+0 read 10\n", "read")
    with pytest.raises(ScriptError, match="read 0 bytes, not 10"):
        run_script(script, CoreBackend())


@pytest.mark.parametrize(
    ("text", "line", "why"),
    [
        ("0 listen\n+x accept\n", 2, "bad time"),
        ("0 < Q 0:0(0) win 1\n", 1, "unknown flag"),
        ("0 < S 0:5(4) win 1\n", 1, "end - start is not the length"),
        ("0 < S 0:0(0)\n# c\n0 > S. 0:0(0)\n", 3, "needs an ack value"),
        ("0 < . 1:1(0) ack 1 win *\n", 1, "needs a window value"),
        ("0 < S 0:0(0) win 5 <mss>\n", 1, "option mss takes one value"),
        ("0 < S 0:0(0) win 5 <bogus 1>\n", 1, "unknown option"),
        ("0 frobnicate\n", 1, "unknown call"),
        ("0 write\n", 1, "write takes 1 to 1 arguments"),
        ("0 state DANCING\n", 1, "unknown state"),
        ("[other] 0 listen\n", 1, "unknown back-end tag"),
        ("0.5~0.1 listen\n", 1, "ends before it starts"),
        ("config nonsense\n", 1, "name=value"),
        ("# nothing\n", 0, "no events"),
        ("0 < S 0:0(0) win 99999\n", 1, "larger than 65535"),
        ("0 < S 0:0(0) win 1 <sack 1:2 3>\n", 1, "is not a:b"),
        ("0 listen via 1\n", 1, "takes no via"),
        ("0 > S. 0:0(0) ack 1 csum bad\n", 1, "inbound segments only"),
        ("0 < S 0:0(0) win 1 csum good\n", 1, "csum takes bad"),
        ("0 checksum_errors many\n", 1, "is not a number"),
    ],
)
def test_bad_scripts_name_line_and_reason(text: str, line: int, why: str) -> None:
    with pytest.raises(ScriptError) as info:
        parse(text, "bad")
    assert info.value.line == line
    assert why in str(info.value)
    assert str(info.value).startswith(f"bad:{line}: ")


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("0123456789+~.:()<>*,SFRP[] \n#abceiklnorstvw")), max_size=120
    )
)
def test_parser_is_total(text: str) -> None:
    try:
        parse(text, "fuzz")
    except ScriptError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_parser_is_total_on_any_text(text: str) -> None:
    try:
        parse(text, "fuzz")
    except ScriptError:
        pass
