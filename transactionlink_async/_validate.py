"""Argument checks made before anything is sent: ids, base URLs, launch arguments."""

from __future__ import annotations

import ipaddress
import math
import re
import ssl
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import yarl

__all__ = [
    "EXPIRY_MAX",
    "EXPIRY_MIN",
    "check_base_url",
    "check_expires_at",
    "check_id",
    "check_number",
    "check_optional_str",
    "check_proxy",
    "check_ssl_context",
    "check_text",
    "is_loopback_host",
]

# Unreserved URI characters only: an id that needs quoting is not an id we send blind.
_SEGMENT = re.compile(r"[A-Za-z0-9._~-]{1,200}")

EXPIRY_MIN = timedelta(minutes=30)
EXPIRY_MAX = timedelta(days=30)


def check_id(name: str, value: object) -> str:
    """An id that is a plain, non-empty URL path segment."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    if not _SEGMENT.fullmatch(value) or value in (".", ".."):
        raise ValueError(
            f"{name} must be a plain id (letters, digits, '-', '_', '.', '~'; at most 200), "
            f"got {value[:60]!r}"
        )
    return value


def check_text(name: str, value: object) -> str:
    """A required, non-blank string."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value


def check_optional_str(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, got {type(value).__name__}")
    return value


def check_mapping(name: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"{name} keys must be str, got {type(key).__name__}")
    return value


def check_number(
    name: str,
    value: object,
    *,
    above: float | None = None,
    at_least: float | None = None,
    below: float | None = None,
) -> float:
    """A finite real number in the range given; TypeError/ValueError saying what is allowed.

    NaN passes every comparison-based check (all comparisons are False) and infinity
    passes "> 0": both must be refused by name, or they turn into a busy loop or an
    OverflowError far from where they were given.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    bounds = [
        f"{sign} {limit:g}"
        for sign, limit in ((">", above), (">=", at_least), ("<", below))
        if limit is not None
    ]
    allowed = " ".join(["a finite number", " and ".join(bounds)])
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        number = math.inf
    if (
        not math.isfinite(number)
        or (above is not None and not number > above)
        or (at_least is not None and not number >= at_least)
        or (below is not None and not number < below)
    ):
        raise ValueError(f"{name} must be {allowed.strip()}, got {value!r}")
    return number


def check_concurrency(concurrency: object, *, allow_none: bool) -> int | None:
    """A positive int (or None, where "no limit" is allowed)."""
    if concurrency is None and allow_none:
        return None
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise TypeError(f"concurrency must be an int, got {type(concurrency).__name__}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    return concurrency


def check_expires_at(value: object, *, now: datetime) -> datetime:
    """An aware datetime between 30 minutes and 30 days after `now`."""
    if not isinstance(value, datetime):
        raise TypeError(f"expires_at must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            "expires_at must be timezone-aware, e.g. datetime.now(timezone.utc) + timedelta(days=1)"
        )
    ahead = value - now
    if not EXPIRY_MIN <= ahead <= EXPIRY_MAX:
        raise ValueError(
            f"expires_at must lie between 30 minutes and 30 days from now; it is {ahead} ahead"
        )
    return value


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def is_loopback_host(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(value: object) -> yarl.URL:
    """An https URL with a host and no query (or http to a loopback host, for tests)."""
    if isinstance(value, yarl.URL):
        value = str(value)
    if not isinstance(value, str):
        raise TypeError(f"base_url must be a str, got {type(value).__name__}")
    try:
        url = yarl.URL(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"base_url is not a URL: {value!r}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(
            f"base_url must be an absolute http(s) URL such as "
            f"'https://api.transactionlink.io', got {value!r}"
        )
    if url.query_string or url.fragment or url.user or url.password:
        raise ValueError("base_url must not carry a query, a fragment or user info")
    if url.scheme == "http" and not is_loopback_host(url.host):
        raise ValueError(
            "refusing to send credentials over plain http; use https "
            "(http is allowed only to loopback addresses, for tests)"
        )
    return url.with_path(url.path.rstrip("/"))


def check_proxy(value: object) -> yarl.URL | None:
    """An http(s) proxy URL (credentials allowed, never echoed back), or None."""
    if value is None:
        return None
    if not isinstance(value, (str, yarl.URL)):
        raise TypeError(f"proxy must be a str URL or None, got {type(value).__name__}")
    try:
        url = yarl.URL(value)
    except (ValueError, TypeError):
        raise ValueError("proxy must be a URL such as 'http://proxy.example:3128'") from None
    if url.scheme not in ("http", "https") or not url.host:
        # The URL may carry the proxy's password: it is not repeated in the message.
        raise ValueError(
            "proxy must be an http:// or https:// URL with a host, "
            "such as 'http://proxy.example:3128' (SOCKS proxies are not supported)"
        )
    if url.path not in ("", "/") or url.query_string or url.fragment:
        raise ValueError("proxy must be a proxy's address only, without a path or query")
    return url


def check_ssl_context(value: object) -> ssl.SSLContext | None:
    """An SSLContext for HTTPS, or None for the system's trust store."""
    if value is None or isinstance(value, ssl.SSLContext):
        return value
    raise TypeError(
        "ssl must be an ssl.SSLContext (e.g. ssl.create_default_context(cafile='ca.pem')) "
        f"or None, got {type(value).__name__}"
    )
