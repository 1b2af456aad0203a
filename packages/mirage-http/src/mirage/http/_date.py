"""HTTP dates (RFC 9110, section 5.6.7): written as IMF-fixdate, read in all three
formats a recipient must accept.

- IMF-fixdate: ``Sun, 06 Nov 1994 08:49:37 GMT`` (what we send);
- RFC 850: ``Sunday, 06-Nov-94 08:49:37 GMT``, whose two-digit year is the year with
  those last digits that is not more than 50 years after ``now`` (section 5.6.7);
- asctime: ``Sun Nov  6 08:49:37 1994``.

:func:`parse_http_date` is total: any text gives seconds since the epoch or ``None``
(a field that is no date, or no such day, such as 31 Feb). The day-of-week name is
checked for form only, as other implementations do. Standard library only and light
to import (``email.utils`` costs several times more, under emulation tens of
milliseconds at every boot).
"""

from __future__ import annotations

import time

__all__ = ["format_http_date", "parse_http_date"]

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_LONG_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH = {name: i + 1 for i, name in enumerate(_MONTHS)}


def format_http_date(seconds: float) -> str:
    """IMF-fixdate of ``seconds`` since the epoch (whole seconds, UTC)."""
    t = time.gmtime(int(seconds))
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d}"
        f" {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _month_days(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _digits(text: str, low: int, high: int) -> int | None:
    if not low <= len(text) <= high or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def _clock(text: str) -> tuple[int, int, int] | None:
    parts = text.split(":")
    if len(parts) != 3:
        return None
    values = [_digits(p, 2, 2) for p in parts]
    hour, minute, second = values
    if hour is None or minute is None or second is None:
        return None
    if hour > 23 or minute > 59 or second > 60:  # 60: a leap second, as 59
        return None
    return hour, minute, min(second, 59)


def parse_http_date(text: str, now: float | None = None) -> float | None:
    """Seconds since the epoch of an HTTP date, or ``None`` if ``text`` is not one.
    ``now`` (seconds since the epoch; the clock if not given) places RFC 850's
    two-digit years."""
    parts = text.split()
    if len(parts) == 6 and parts[0][:-1] in _DAYS and parts[0][-1:] == "," and parts[5] == "GMT":
        day, month, year, clock = _digits(parts[1], 2, 2), parts[2], parts[3], parts[4]
        full_year = _digits(year, 4, 4)
    elif len(parts) == 4 and parts[0][:-1] in _LONG_DAYS and parts[0][-1:] == ",":
        if parts[3] != "GMT":
            return None
        fields = parts[1].split("-")
        if len(fields) != 3:
            return None
        day, month, clock = _digits(fields[0], 2, 2), fields[1], parts[2]
        short = _digits(fields[2], 2, 2)
        if short is None:
            return None
        this_year = time.gmtime(time.time() if now is None else now).tm_year
        full_year = this_year - this_year % 100 + short
        if full_year > this_year + 50:
            full_year -= 100
    elif len(parts) == 5 and parts[0] in _DAYS:
        month, day, clock = parts[1], _digits(parts[2], 1, 2), parts[3]
        full_year = _digits(parts[4], 4, 4)
    else:
        return None
    number = _MONTH.get(month)
    hms = _clock(clock)
    if day is None or number is None or hms is None or full_year is None:
        return None
    if not 1 <= day <= _month_days(full_year, number):
        return None
    hour, minute, second = hms
    return float(
        _days_from_civil(full_year, number, day) * 86400 + hour * 3600 + minute * 60 + second
    )
