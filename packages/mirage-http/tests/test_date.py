"""HTTP dates against the standard library's email.utils, and the RFC's examples."""

from __future__ import annotations

from email.utils import formatdate, parsedate_to_datetime

from hypothesis import given
from hypothesis import strategies as st

from mirage.http._date import format_http_date, parse_http_date

EXAMPLE = 784111777  # RFC 9110's example instant, 1994-11-06 08:49:37 UTC
YEAR_2026 = 1_795_000_000  # a "now" in 2026


def test_the_rfc_examples_in_all_three_formats() -> None:
    assert format_http_date(EXAMPLE) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == EXAMPLE
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", now=YEAR_2026) == EXAMPLE
    assert parse_http_date("Sun Nov  6 08:49:37 1994") == EXAMPLE


def test_rfc850_years_are_never_more_than_50_years_ahead() -> None:
    assert parse_http_date("Monday, 01-Jan-76 00:00:00 GMT", now=YEAR_2026) == parse_http_date(
        "Thu, 01 Jan 2076 00:00:00 GMT"
    )
    assert parse_http_date("Friday, 01-Jan-77 00:00:00 GMT", now=YEAR_2026) == parse_http_date(
        "Sat, 01 Jan 1977 00:00:00 GMT"
    )


def test_what_is_no_date_is_none() -> None:
    for text in (
        "",
        "yesterday",
        "Sun, 06 Nov 1994 08:49:37 UTC",  # HTTP dates are GMT
        "Sun, 31 Feb 1994 08:49:37 GMT",  # no such day
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49 GMT",
        "Sun, ٠٦ Nov 1994 08:49:37 GMT",  # non-ASCII digits
    ):
        assert parse_http_date(text) is None, text


@given(st.integers(min_value=0, max_value=253402300799))
def test_written_as_email_utils_writes_and_read_back(seconds: int) -> None:
    text = format_http_date(seconds)
    assert text == formatdate(seconds, usegmt=True)
    assert parse_http_date(text) == seconds
    assert parsedate_to_datetime(text).timestamp() == seconds


@given(st.text(max_size=40))
def test_parsing_is_total(text: str) -> None:
    result = parse_http_date(text, now=YEAR_2026)
    assert result is None or isinstance(result, float)
