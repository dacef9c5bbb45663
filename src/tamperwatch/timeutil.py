"""Timestamp parsing for the formats tamperwatch reads, tuned for the hot path.

All functions return seconds since the Unix epoch (UTC) as a float, or ``None`` when the text is
not a timestamp of the expected shape. No function invents a time.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta, timezone

# Epoch seconds of "YYYY-MM-DDTHH:MM" prefixes already seen. eslogger writes millions of
# timestamps that share their minute, so the calendar arithmetic runs once per minute of data.
_MINUTE_CACHE: dict[str, int] = {}
_MINUTE_CACHE_MAX_ENTRIES = 65_536


def _minute_epoch(prefix: str) -> int | None:
    cached = _MINUTE_CACHE.get(prefix)
    if cached is not None:
        return cached
    try:
        # datetime rejects impossible dates (February 30th) that calendar.timegm would roll over.
        moment = datetime(
            int(prefix[0:4]),
            int(prefix[5:7]),
            int(prefix[8:10]),
            int(prefix[11:13]),
            int(prefix[14:16]),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    value = calendar.timegm(moment.utctimetuple())
    if len(_MINUTE_CACHE) >= _MINUTE_CACHE_MAX_ENTRIES:
        _MINUTE_CACHE.clear()
    _MINUTE_CACHE[prefix] = value
    return value


def parse_rfc3339(text: str) -> float | None:
    """Parse an RFC 3339 time such as ``2025-08-07T15:13:09.811587464Z``.

    The fast path handles the UTC ``Z`` form that eslogger and Jamf Protect write, with any number
    of fractional digits; other offsets go through :func:`datetime.fromisoformat`.
    """
    if (
        len(text) >= 20
        and text[-1] in "Zz"
        and text[4] == "-"
        and text[7] == "-"
        and text[10] in "Tt "
        and text[13] == ":"
        and text[16] == ":"
    ):
        base = _minute_epoch(text[:16])
        if base is None:
            return None
        try:
            seconds = float(text[17:-1])
        except ValueError:
            return None
        if not 0.0 <= seconds < 61.0:
            return None
        return base + seconds
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()


_LOCAL_WITH_OFFSET = re.compile(
    r"""^(?P<date>\d{4}-\d{2}-\d{2})[ T]            # 2026-07-26
        (?P<time>\d{2}:\d{2}:\d{2})                 # 18:11:22
        (?:\.(?P<fraction>\d{1,9}))?                # .348728
        \s*(?P<sign>[+-])(?P<hh>\d{2}):?(?P<mm>\d{2})$  # +1200 or -04:00
    """,
    re.VERBOSE,
)


def parse_local_with_offset(text: str) -> float | None:
    """Parse a local time with a numeric offset, as the unified log and crash reports write it.

    Accepts ``2026-07-26 18:11:22.348728+1200`` (``log show``), ``2022-01-06 15:09:22.00 +0200``
    (``.ips`` header) and ``2025-04-16 07:01:48.0964 -0400`` (text crash report).
    """
    match = _LOCAL_WITH_OFFSET.match(text.strip())
    if match is None:
        return None
    try:
        naive = datetime.fromisoformat(f"{match['date']}T{match['time']}")
    except ValueError:
        return None
    offset_minutes = int(match["hh"]) * 60 + int(match["mm"])
    if offset_minutes > 18 * 60:
        return None
    if match["sign"] == "-":
        offset_minutes = -offset_minutes
    aware = naive.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    fraction = match["fraction"]
    extra = int(fraction) / 10 ** len(fraction) if fraction else 0.0
    return aware.timestamp() + extra


def format_rfc3339(epoch: float) -> str:
    """Format epoch seconds as RFC 3339 UTC with microseconds, e.g. ``2026-03-02T10:00:00.000000Z``.

    A time outside the years 1 to 9999 is written as the first or last microsecond of that
    range, because a record may carry any date and RFC 3339 has four-digit years.
    """
    try:
        moment = datetime.fromtimestamp(epoch, tz=UTC)
    except (OverflowError, ValueError, OSError):
        moment = (datetime.max if epoch > 0 else datetime.min).replace(tzinfo=UTC)
    # strftime("%Y") does not pad years before 1000 on glibc.
    return f"{moment.year:04d}" + moment.strftime("-%m-%dT%H:%M:%S.%fZ")
