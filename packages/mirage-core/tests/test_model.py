from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mirage.core import REQUIRED, ConfigError, Key, RuntimeArg
from mirage.core._errors import MirageError
from mirage.core._model import TYPES, convert_value
from mirage.core._plan import Plan


@given(st.sampled_from(TYPES), st.one_of(st.text(), st.integers(), st.booleans(), st.none()))
@example("int", "0x10")
@example("bool", "Yes")
@example("float", "nan")
def test_convert_value_gives_a_value_or_a_config_error(type_: str, raw: object) -> None:
    try:
        value = convert_value(type_, raw, "key --k")
    except ConfigError as exc:
        assert "key --k expects a value of type" in str(exc)
        return
    if raw is None:
        assert value is None
    elif type_ == "int":
        assert isinstance(value, int)
    elif type_ == "bool":
        assert isinstance(value, bool)


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("off", False), ("1", True)])
def test_bool_spellings(raw: str, value: bool) -> None:
    assert Key("flag", "bool").parse(raw) is value


def test_key_choices() -> None:
    key = Key("net", "str", None, "", ("socket", "direct"))
    assert key.parse("direct") == "direct"
    with pytest.raises(ConfigError, match="choose one of: socket, direct"):
        key.parse("pigeon")


def test_runtime_arg_dest_and_json() -> None:
    arg = RuntimeArg("delay-ms", "int", REQUIRED)
    assert arg.dest == "delay_ms" and arg.required
    assert arg.to_json()["required"] is True


@given(st.text())
@example('{"version": 1}')
@example("[]")
def test_plan_decoding_is_total(text: str) -> None:
    try:
        Plan.from_json(text)
    except MirageError as exc:
        assert "unreadable" in str(exc)
