"""The pure S3 decisions: URL checks, ranges, ETags, expiry, and what each answer means."""

from __future__ import annotations

import calendar
import time

import pytest
import yarl
from hypothesis import given
from hypothesis import strategies as st

from transactionlink_async import ResultDownloadError
from transactionlink_async._download.decide import (
    Accept,
    Complete,
    Fail,
    Refresh,
    Retry,
    StartOver,
    check_download_url,
    describe_url,
    is_expired_answer,
    judge,
    md5_of_etag,
    parse_content_range,
    redirect_in_body,
    redirect_target,
    resumable,
    s3_error,
    url_lifetime,
)

SIGNED = (
    "https://bucket.s3.eu-west-1.amazonaws.com/results/o%27brien~x%2Fy%20z%7E.json"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIA%2F20260101%2Feu-west-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=deadbeefcafe"
)
EXPIRED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message><X-Amz-Expires>300</X-Amz-Expires>"
    b"<RequestId>1</RequestId></Error>"
)
DENIED = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
ETAG = '"0123456789abcdef0123456789abcdef"'


# -- the link itself ---------------------------------------------------------------------------


def test_the_url_is_kept_byte_for_byte() -> None:
    url = check_download_url(SIGNED)
    assert str(url) == SIGNED
    assert url.raw_path == "/results/o%27brien~x%2Fy%20z%7E.json"
    assert "X-Amz-Credential=AKIA%2F20260101" in url.raw_query_string
    # What a plain yarl.URL(str) would have sent instead, breaking the signature:
    assert str(yarl.URL(SIGNED)) != SIGNED


@pytest.mark.parametrize(
    "bad",
    [
        "https://s3.example.com/a b?X-Amz-Signature=1",
        "https://s3.example.com/caf\u00e9?X-Amz-Signature=1",
        "https://s3.example.com/a\tb",
        "https://s3.example.com/a\x7fb",
        "https://s3.example.com/a\nb",
        "https://s3.example.com/a#frag",
        "",
    ],
)
def test_urls_that_would_need_requoting_are_refused(bad: str) -> None:
    with pytest.raises(ResultDownloadError, match="byte for byte"):
        check_download_url(bad)


@pytest.mark.parametrize(
    ("url", "fine"),
    [
        ("http://127.0.0.1:9000/b/k?X-Amz-Signature=1", True),
        ("http://localhost/b/k", True),
        ("http://[::1]:9000/b/k", True),
        ("http://s3.amazonaws.com/b/k?X-Amz-Signature=secret", False),
        ("ftp://s3.amazonaws.com/b/k", False),
        ("https://user:secret@s3.amazonaws.com/b/k", False),
        ("/relative/path", False),
    ],
)
def test_https_only_except_loopback(url: str, fine: bool) -> None:
    if fine:
        check_download_url(url)
        return
    with pytest.raises(ResultDownloadError) as caught:
        check_download_url(url)
    assert "secret" not in str(caught.value)


def test_describe_url_shows_host_and_path_never_the_query() -> None:
    described = describe_url(check_download_url(SIGNED))
    assert described == "bucket.s3.eu-west-1.amazonaws.com/results/o%27brien~x%2Fy%20z%7E.json"
    assert describe_url(check_download_url("http://127.0.0.1:81/b/k?s=1")) == "127.0.0.1:81/b/k"


@pytest.mark.parametrize(
    ("signed", "expected"),
    [
        ("host", True),
        ("Host", True),
        ("host%3Brange", False),
        ("host;x-amz-server-side-encryption-customer-algorithm", False),
        ("content-type%3Bhost", False),
    ],
)
def test_resumable_only_when_only_host_is_signed(signed: str, expected: bool) -> None:
    url = yarl.URL(f"https://s3.example.com/b/k?X-Amz-SignedHeaders={signed}&x=1", encoded=True)
    assert resumable(url) is expected


def test_a_link_without_signed_headers_signs_no_header() -> None:
    assert resumable(yarl.URL("https://s3.example.com/b/k?Signature=abc&Expires=1", encoded=True))


def amz_url(date: str | None, expires: str | None) -> yarl.URL:
    params = []
    if date is not None:
        params.append(f"X-Amz-Date={date}")
    if expires is not None:
        params.append(f"X-Amz-Expires={expires}")
    return yarl.URL("https://s3.example.com/b/k?" + "&".join(params), encoded=True)


def test_url_lifetime_from_date_and_expires() -> None:
    signed_at = calendar.timegm((2026, 1, 1, 0, 0, 0, 0, 0, 0))
    url = amz_url("20260101T000000Z", "300")
    assert url_lifetime(url, now=signed_at + 100) == pytest.approx(200)
    assert url_lifetime(url, now=signed_at) == pytest.approx(300)


def test_url_lifetime_defaults_to_the_documented_five_minutes() -> None:
    assert url_lifetime(amz_url(None, None), now=time.time()) == 300
    assert url_lifetime(amz_url("garbage", "x"), now=time.time()) == 300
    assert url_lifetime(amz_url(None, "60"), now=time.time()) == 60


@given(skew=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_url_lifetime_survives_any_clock_skew(skew: float) -> None:
    signed_at = calendar.timegm((2026, 1, 1, 0, 0, 0, 0, 0, 0))
    left = url_lifetime(amz_url("20260101T000000Z", "300"), now=signed_at + skew)
    assert 0 < left <= 300


# -- redirects, ranges, ETags, S3 errors -------------------------------------------------------


def test_redirect_is_exactly_one_key_with_a_string() -> None:
    assert redirect_target({"$redirect": "https://x/y"}) == "https://x/y"
    assert redirect_target({"$redirect": "https://x/y", "other": 1}) is None
    assert redirect_target({"$redirect": 5}) is None
    assert redirect_target(["$redirect"]) is None
    assert redirect_in_body(b' {"$redirect": "https://x/y"} ') == "https://x/y"
    assert redirect_in_body(b'{"records": []}') is None
    assert redirect_in_body(b'{"$redirect": ') is None
    big = b'{"$redirect": "' + b"a" * 70_000 + b'"}'
    assert redirect_in_body(big) is None  # a large body is a result, never parsed twice


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes 0-99/100", (0, 99, 100)),
        ("bytes 100-199/1000", (100, 199, 1000)),
        ("bytes 5-9/*", (5, 9, None)),
        ("bytes  7-7/8 ", (7, 7, 8)),
        ("bytes 10-5/100", None),
        ("bytes 0-100/100", None),
        ("bytes */100", None),
        ("items 0-1/2", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_content_range(value: str | None, expected: object) -> None:
    assert parse_content_range(value) == expected


@given(
    first=st.integers(0, 2**50),
    length=st.integers(1, 2**40),
    extra=st.integers(0, 2**40),
)
def test_parse_content_range_round_trip(first: int, length: int, extra: int) -> None:
    last = first + length - 1
    total = last + 1 + extra
    assert parse_content_range(f"bytes {first}-{last}/{total}") == (first, last, total)


@pytest.mark.parametrize(
    ("etag", "md5"),
    [
        ('"0123456789ABCDEF0123456789abcdef"', "0123456789abcdef0123456789abcdef"),
        ("0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"),
        ('"0123456789abcdef0123456789abcdef-3"', None),
        ('"0123456789abcdef"', None),
        ('"zz23456789abcdef0123456789abcdef"', None),
        (None, None),
    ],
)
def test_only_a_plain_32_hex_etag_is_an_md5(etag: str | None, md5: str | None) -> None:
    assert md5_of_etag(etag) == md5


def test_expired_is_told_apart_from_other_403s() -> None:
    assert is_expired_answer(403, EXPIRED)
    assert not is_expired_answer(403, DENIED)
    assert not is_expired_answer(403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>")
    assert not is_expired_answer(400, EXPIRED)
    assert not is_expired_answer(403, b"")
    assert s3_error(EXPIRED) == ("AccessDenied", "Request has expired")
    assert s3_error(b"\xff\xfe not xml") == (None, None)


# -- judge: what an answer means ---------------------------------------------------------------


def verdict(status: int, headers: dict[str, str], **kwargs: object) -> object:
    kwargs.setdefault("offset", 0)
    kwargs.setdefault("etag", None)
    kwargs.setdefault("total", None)
    return judge(status=status, headers=headers, **kwargs)  # type: ignore[arg-type]


def test_first_answer_is_read() -> None:
    got = verdict(200, {"Content-Length": "100", "ETag": ETAG})
    assert got == Accept(0, 100, ETAG)
    assert verdict(200, {}) == Accept(0, None, None)


def test_a_200_to_a_range_is_never_appended() -> None:
    got = verdict(200, {"Content-Length": "100", "ETag": ETAG}, offset=40, etag=ETAG, total=100)
    assert isinstance(got, StartOver)
    assert got.keep


def test_a_206_continues_where_asked() -> None:
    headers = {"Content-Range": "bytes 40-99/100", "Content-Length": "60", "ETag": ETAG}
    assert verdict(206, headers, offset=40, etag=ETAG, total=100) == Accept(40, 100, ETAG)


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        ({"Content-Range": "bytes 30-99/100"}, StartOver),  # not where we asked
        ({"Content-Range": "bytes 40-99/120"}, StartOver),  # the size changed
        ({"Content-Range": "bytes 40-99/100", "ETag": '"other"'}, StartOver),
        ({"Content-Range": "bytes 40-99/100", "Content-Length": "7"}, Retry),
        ({}, Retry),
    ],
)
def test_a_206_that_does_not_fit_is_not_used(headers: dict[str, str], kind: type) -> None:
    assert isinstance(verdict(206, headers, offset=40, etag=ETAG, total=100), kind)


def test_412_starts_over() -> None:
    got = verdict(412, {}, offset=40, etag=ETAG, total=100)
    assert isinstance(got, StartOver)
    assert not got.keep


def test_416_at_the_exact_end_is_complete() -> None:
    assert verdict(416, {"Content-Range": "bytes */100"}, offset=100, etag=ETAG, total=100) == (
        Complete()
    )
    assert verdict(416, {}, offset=100, etag=ETAG, total=100) == Complete()
    assert verdict(416, {"Content-Range": "bytes */100"}, offset=100, etag=ETAG) == Complete()
    assert isinstance(verdict(416, {"Content-Range": "bytes */90"}, offset=100), StartOver)
    assert isinstance(verdict(416, {"Content-Range": "bytes */100"}, offset=60), StartOver)


def test_expired_link_asks_for_a_fresh_one() -> None:
    assert isinstance(verdict(403, {}, error_body=EXPIRED, offset=40), Refresh)


def test_other_refusals_fail_with_the_s3_code_but_not_the_request_echo() -> None:
    body = (
        b"<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we "
        b"calculated does not match</Message><StringToSign>AWS4 secret-ish</StringToSign>"
        b"<CanonicalRequest>GET /k X-Amz-Signature=abc</CanonicalRequest></Error>"
    )
    got = verdict(403, {}, error_body=body)
    assert isinstance(got, Fail)
    assert "SignatureDoesNotMatch" in got.reason
    assert "StringToSign" not in got.reason
    assert "X-Amz-Signature" not in got.reason
    assert isinstance(verdict(400, {}, error_body=b"<Error><Code>InvalidArgument</Code>"), Fail)
    assert isinstance(verdict(404, {}), Fail)
    assert isinstance(verdict(307, {"Location": "https://elsewhere"}), Fail)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_passing_failures_are_retried(status: int) -> None:
    got = verdict(status, {"Retry-After": "2"}, now=1000.0)
    assert got == Retry(f"HTTP {status}", 2.0)
