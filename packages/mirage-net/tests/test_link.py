"""The sans-IO link model: seeded, and its faults within their configured rates."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mirage.net import LinkConfig, LinkModel


def test_perfect_link_delivers_now() -> None:
    (d,) = LinkModel().transmit(b"abc", 1.5)
    assert (d.at, d.frame) == (1.5, b"abc")


def test_delay_and_rate() -> None:
    model = LinkModel(LinkConfig(delay=0.1, rate=1000.0))
    first = model.transmit(bytes(100), 0.0)[0]
    second = model.transmit(bytes(100), 0.0)[0]
    assert first.at == pytest.approx(0.2)
    assert second.at == pytest.approx(0.3)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32), loss=st.floats(0, 1), corrupt=st.floats(0, 1))
def test_rates_and_reproducibility(seed: int, loss: float, corrupt: float) -> None:
    config = LinkConfig(loss=loss, corrupt=corrupt, duplicate=0.1, reorder=0.1, jitter=0.01)
    runs = []
    for _ in range(2):
        model = LinkModel(config, seed)
        runs.append([model.transmit(bytes(20), i * 0.001) for i in range(200)])
    assert runs[0] == runs[1]
    delivered = sum(len(d) for d in runs[0])
    assert delivered <= 400
    if loss == 0:
        assert delivered >= 200
    for deliveries in runs[0]:
        for d in deliveries:
            assert len(d.frame) == 20


def test_bad_config() -> None:
    with pytest.raises(ValueError):
        LinkConfig(loss=1.5)
    with pytest.raises(ValueError):
        LinkConfig(delay=-1)
