"""ISO 8601 date-times as the API writes them, read the same way on every Python version."""

import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache

__all__ = ["format_datetime", "parse_datetime"]

# Python 3.10's datetime.fromisoformat rejects "Z" and fractions that are not 3 or 6 digits
# long, and 3.11+ accept more; one regex gives the same answer everywhere. The offset may
# be written "+02:00", "+0200" or "+02" (Java servers use all three).
_ISO_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?)?"
)

# Offsets repeat (mostly UTC, a handful of others); building the tzinfo once saves time
# on large batches of parses.
_OFFSETS: dict[tuple[str, str, str | None], timezone] = {}


def _offset(sign: str, hours: str, minutes: str | None) -> timezone:
    key = (sign, hours, minutes)
    tz = _OFFSETS.get(key)
    if tz is None:
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        tz = timezone.utc if not delta else timezone(-delta if sign == "-" else delta)
        if len(_OFFSETS) < 256:
            _OFFSETS[key] = tz
    return tz


def parse_datetime(value: str) -> datetime:
    """Read an ISO 8601 date-time into an aware datetime; without an offset it is UTC.

    Accepts "Z" or a numeric offset, fractions of any length (cut to microseconds), and a
    bare date (midnight UTC). Raises `ValueError` (without echoing the value) otherwise.
    """
    # The same few date-times come back in every poll of an execution (created, expires):
    # datetimes are immutable, so a parse is remembered (errors are not); only short
    # texts, so that a server's endless fraction digits cannot fill memory.
    if len(value) <= _CACHED_LENGTH:
        return _parse_cached(value)
    return _parse(value)


_CACHED_LENGTH = 40


@lru_cache(maxsize=4096)
def _parse_cached(value: str) -> datetime:
    return _parse(value)


def _parse(value: str) -> datetime:
    match = _ISO_DATETIME.fullmatch(value)
    if match is None:
        raise ValueError("not an ISO 8601 date-time")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    try:
        tz = timezone.utc if zulu or not sign else _offset(sign, off_h, off_m)
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micro,
            tzinfo=tz,
        )
    except ValueError:
        # datetime's and timezone's own messages may quote the value; say what is wrong
        # in general terms only.
        raise ValueError("not a valid ISO 8601 date-time (a field is out of range)") from None


def format_datetime(value: datetime) -> str:
    """Write an aware datetime as ISO 8601 in UTC with a "Z" designator.

    UTC with "Z" is the one form every ISO parser on the server side accepts (Java's
    `Instant.parse` before JDK 12 refuses "+00:00"). A naive datetime is refused: guessing
    its zone could move an expiry by hours.
    """
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("naive datetime: give it a tzinfo (e.g. datetime.now(timezone.utc))")
    try:
        utc = value.replace(tzinfo=None) - offset
    except OverflowError:
        raise ValueError("datetime out of range once moved to UTC") from None
    return utc.isoformat() + "Z"
