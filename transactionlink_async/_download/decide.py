"""Pure decisions about pre-signed S3 downloads: URLs, ranges, ETags, expiry, MD5, verdicts."""

from __future__ import annotations

import calendar
import json
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import attrs
import yarl

from .._retry import parse_retry_after
from .._validate import is_loopback_host
from ..errors import ResultDownloadError

__all__ = [
    "DEFAULT_URL_LIFETIME",
    "REDIRECT_MAX",
    "Accept",
    "Complete",
    "Fail",
    "Refresh",
    "Retry",
    "StartOver",
    "Verdict",
    "check_download_url",
    "describe_url",
    "int_header",
    "is_expired_answer",
    "judge",
    "md5_of_etag",
    "md5_verdict",
    "parse_content_range",
    "redirect_in_body",
    "redirect_target",
    "resumable",
    "s3_error",
    "url_lifetime",
    "wants_md5",
]

#: How long the API documents its pre-signed URLs to stay valid.
DEFAULT_URL_LIFETIME = 300.0

# Printable ASCII without the space: anything else would have to be re-quoted to be sent,
# which changes the bytes the signature covers.
_SENDABLE = re.compile(r"[\x21-\x7e]+")
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)\s*")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)\s*")
_PLAIN_MD5 = re.compile(r'(?:W/)?"?([0-9a-fA-F]{32})"?')
_AMZ_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")
_XML_FIELD = re.compile(r"<(Code|Message)>([^<]{0,300})</\1>")
#: A redirect answer is a few hundred bytes; a larger body is a result, not worth parsing twice.
REDIRECT_MAX = 64 * 1024
#: Statuses worth another try at the same URL (S3's own advice for 500/503 SlowDown).
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def redirect_target(data: Any) -> str | None:
    """The URL of a `{"$redirect": url}` answer (exactly that one key), else None."""
    if isinstance(data, dict) and len(data) == 1:
        url = data.get("$redirect")
        if isinstance(url, str):
            return url
    return None


def redirect_in_body(body: bytes) -> str | None:
    """`redirect_target` of a raw `/result` body, without parsing large inline results."""
    if len(body) > REDIRECT_MAX or b"$redirect" not in body:
        return None
    try:
        return redirect_target(json.loads(body))
    except (ValueError, RecursionError):
        return None


def check_download_url(url: str) -> yarl.URL:
    """The URL to send byte for byte; ResultDownloadError when it cannot be sent as it is."""
    if not _SENDABLE.fullmatch(url) or "#" in url:
        bad = "a raw space, a control or non-ASCII character, or a '#'"
        raise ResultDownloadError(
            f"the download link the API gave holds {bad}; it cannot be sent byte for byte "
            "(re-quoting it would break its signature), so it is refused"
        )
    try:
        parsed = yarl.URL(url, encoded=True)
    except (ValueError, TypeError):
        raise ResultDownloadError("the download link the API gave is not a URL") from None
    host = parsed.raw_host
    if parsed.scheme not in ("http", "https") or not host:
        raise ResultDownloadError("the download link the API gave is not an absolute http(s) URL")
    if parsed.raw_user or parsed.raw_password:
        # aiohttp would turn them into an Authorization header: a second auth mechanism.
        raise ResultDownloadError("the download link the API gave carries user credentials")
    if parsed.scheme == "http" and not is_loopback_host(host):
        raise ResultDownloadError(
            f"refusing to download from {host} over plain http; the link must be https"
        )
    return parsed


def describe_url(url: yarl.URL) -> str:
    """Host and path only: the query holds the signature and never goes into logs or errors."""
    port = "" if url.explicit_port is None else f":{url.explicit_port}"
    return f"{url.raw_host}{port}{url.raw_path}"


def resumable(url: yarl.URL) -> bool:
    """Whether a Range/If-Match request can reuse the URL: it signs no header but `host`."""
    raw = _raw_param(url, "X-Amz-SignedHeaders")
    if raw is None:
        # No SigV4 header list (e.g. SigV2): the signature covers no request header.
        return True
    return [h.strip().lower() for h in unquote(raw).split(";")] == ["host"]


def url_lifetime(url: yarl.URL, *, now: float) -> float:
    """Seconds the URL stays valid from `now` (wall clock), from X-Amz-Date + X-Amz-Expires.

    Without those parameters the API's documented five minutes apply. A clock that
    disagrees with the signer's falls back to the URL's own duration from now.
    """
    expires_raw = _raw_param(url, "X-Amz-Expires")
    try:
        duration = float(expires_raw) if expires_raw is not None else DEFAULT_URL_LIFETIME
    except ValueError:
        duration = DEFAULT_URL_LIFETIME
    if not duration > 0 or duration != duration:
        duration = DEFAULT_URL_LIFETIME
    signed = _amz_date(_raw_param(url, "X-Amz-Date"))
    if signed is None:
        return duration
    left = signed + duration - now
    return left if 0 < left <= duration else duration


def _amz_date(value: str | None) -> float | None:
    match = _AMZ_DATE.fullmatch(value or "")
    if match is None:
        return None
    parts = tuple(int(p) for p in match.groups())
    try:
        return float(calendar.timegm((*parts, 0, 0, 0)))
    except (ValueError, OverflowError):
        return None


def _raw_param(url: yarl.URL, name: str) -> str | None:
    for part in url.raw_query_string.split("&"):
        key, _, value = part.partition("=")
        if key == name:
            return value
    return None


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """(first, last, total or None) of `bytes first-last/total`, or None when malformed."""
    if value is None:
        return None
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if match is None:
        return None
    first, last = int(match[1]), int(match[2])
    total = None if match[3] == "*" else int(match[3])
    if last < first or (total is not None and last >= total):
        return None
    return first, last, total


def md5_of_etag(etag: str | None) -> str | None:
    """The MD5 (lower-case hex) an ETag stands for: only a plain 32-hex one, never `...-N`."""
    if etag is None:
        return None
    match = _PLAIN_MD5.fullmatch(etag.strip())
    return match[1].lower() if match else None


def s3_error(body: bytes) -> tuple[str | None, str | None]:
    """S3's error `Code` and `Message` from an XML body (nothing else of it: no request echo)."""
    text = body[:8192].decode("utf-8", "replace")
    found = dict(_XML_FIELD.findall(text))
    return found.get("Code"), found.get("Message")


def is_expired_answer(status: int, body: bytes) -> bool:
    """An expired pre-signed URL: 403, AccessDenied, "Request has expired"."""
    if status != 403:
        return False
    code, message = s3_error(body)
    return code == "AccessDenied" and message is not None and "expired" in message.lower()


# -- what to do with an answer ---------------------------------------------------------------


@attrs.frozen
class Accept:
    """Read this answer's body: its first byte is byte `start` of an object of `total`."""

    start: int
    total: int | None
    etag: str | None


@attrs.frozen
class Complete:
    """Nothing is left to read: the object is complete."""


@attrs.frozen
class StartOver:
    """The bytes held so far cannot be continued; `keep`: this answer is the whole object."""

    reason: str
    keep: bool = False


@attrs.frozen
class Refresh:
    """The URL has expired: ask the API for a fresh one, then try again."""

    reason: str


@attrs.frozen
class Retry:
    """A passing failure: try again (after `retry_after` seconds when given)."""

    reason: str
    retry_after: float | None = None


@attrs.frozen
class Fail:
    """Trying again cannot help."""

    reason: str


Verdict = Accept | Complete | StartOver | Refresh | Retry | Fail


def judge(
    *,
    status: int,
    headers: Mapping[str, str],
    offset: int,
    etag: str | None,
    total: int | None,
    error_body: bytes = b"",
    now: float | None = None,
) -> Verdict:
    """Decide what an answer to a GET for bytes `offset`- means.

    `etag`/`total` are what the first answer said (None when not known yet); a request
    for `offset` > 0 carried `Range: bytes=offset-` and `If-Match: etag`.
    """
    answer_etag = headers.get("ETag")
    length = int_header(headers.get("Content-Length"))
    if status == 200:
        if offset > 0:
            return StartOver("the server ignored the Range header and sent the whole object", True)
        return Accept(0, length, answer_etag)
    if status == 206:
        return _judge_partial(headers, offset, etag, total, length, answer_etag)
    if status == 412:
        return StartOver("the object changed since the download began (412)")
    if status == 416:
        unsatisfied = _UNSATISFIED_RANGE.fullmatch(headers.get("Content-Range", "").strip())
        size = int(unsatisfied[1]) if unsatisfied else total
        if offset > 0 and size == offset and (total is None or total == offset):
            return Complete()
        return StartOver("the server cannot serve the rest of the object (416)")
    code, message = s3_error(error_body)
    what = f"HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    if is_expired_answer(status, error_body):
        return Refresh(f"the download link expired ({what})")
    if status in RETRY_STATUSES:
        wait = parse_retry_after(headers.get("Retry-After"), now=now or time.time())
        return Retry(what, wait)
    if 300 <= status < 400:
        return Fail(f"the storage redirected the download ({what}), which a signed link forbids")
    return Fail(f"the storage refused the download ({what})")


def _judge_partial(
    headers: Mapping[str, str],
    offset: int,
    etag: str | None,
    total: int | None,
    length: int | None,
    answer_etag: str | None,
) -> Verdict:
    span = parse_content_range(headers.get("Content-Range"))
    if span is None:
        return Retry("a partial answer without a readable Content-Range")
    first, last, size = span
    if length is not None and length != last - first + 1:
        return Retry("a partial answer whose Content-Length disagrees with its Content-Range")
    if first != offset:
        return StartOver(f"asked for byte {offset} onwards, the server sent from byte {first}")
    if total is not None and size is not None and size != total:
        return StartOver(f"the object's size changed from {total} to {size} bytes")
    if etag is not None and answer_etag is not None and answer_etag != etag:
        return StartOver("the object changed since the download began (new ETag)")
    return Accept(first, size if size is not None else total, answer_etag or etag)


def int_header(value: str | None) -> int | None:
    """A header's non-negative integer value; None when absent or not a plain number."""
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def wants_md5(verify: bool, etag: str | None) -> bool:
    """Whether to hash a body: only when asked to and its ETag is a plain MD5 to check.

    MD5 runs at well under a gigabyte per second: worth it only when an ETag can check it.
    """
    return verify and md5_of_etag(etag) is not None


def md5_verdict(digest: str | None, etag: str | None) -> tuple[bool, str | None]:
    """(whether `digest` was checked against the ETag and matched, why it did not match).

    Nothing can be checked without a digest or with an ETag that is not a plain MD5.
    """
    expected = md5_of_etag(etag)
    if digest is None or expected is None:
        return False, None
    if digest == expected:
        return True, None
    return False, f"MD5 {digest} does not match the ETag's {expected}"
