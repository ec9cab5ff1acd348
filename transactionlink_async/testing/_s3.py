"""FakeS3: pre-signed-URL object storage on its own listener, as picky as the real one."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import secrets
import ssl as ssl_module
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from types import TracebackType
from urllib.parse import quote
from xml.sax.saxutils import escape

from aiohttp import web

from ._faults import method_matches, path_matches
from ._s3data import DEFAULT_PIECE, Body, GeneratedJson, StoredBytes

__all__ = ["FakeS3", "S3Fault", "S3Object", "S3Request", "S3Result"]

_SHUTDOWN_TIMEOUT = 2.0
_ONE_AUTH = (
    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
    "Signature query string parameter or the Authorization header should be specified"
)


@dataclass(frozen=True)
class S3Result:
    """An execution result that lives in the fake S3 under `key` (the API redirects to it)."""

    key: str


@dataclass(eq=False)
class S3Object:
    """One stored object: its body, its ETag, and how it is labelled."""

    key: str
    raw_path: str
    body: Body
    etag: str
    content_encoding: str | None = None
    content_type: str = "binary/octet-stream"
    last_modified: float = field(default_factory=time.time)

    @property
    def size(self) -> int:
        return self.body.size

    @property
    def md5_hex(self) -> str:
        return self.body.md5_hex()


@dataclass(eq=False)
class S3Request:
    """One request the fake S3 saw; `status` is None when no answer started.

    `bytes_sent`: body bytes written; `cut`: the server cut it on purpose (a fault);
    `hung_up`: the client closed the connection before the body's end.
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    status: int | None = None
    bytes_sent: int = 0
    cut: bool = False
    hung_up: bool = False
    started: float = 0.0
    finished: float | None = None

    @property
    def range(self) -> str | None:
        return _header(self.headers, "Range")

    @property
    def in_flight(self) -> bool:
        return self.finished is None


@dataclass(eq=False)
class S3Fault:
    """What to do to the next `times` GETs of objects (None = forever).

    `ranged` limits the rule to requests with (True) or without (False) a Range header.
    `status` answers an S3 error (`code`, `message`) instead of the object; `drop` closes
    the connection without answering; `ignore_range` sends the whole object with 200
    whatever the Range said; `cut_after` sends that many body bytes then closes the
    connection; `stall_after` sends that many then goes quiet; `drip` sleeps that many
    seconds after each piece of `drip_bytes`; `chunked` sends without Content-Length;
    `corrupt_at` flips the bits of that byte of the answer's body; `short_range` answers a
    ranged GET (only those) with at most that many bytes, as a legal 206 whose
    Content-Range says which: the client must ask again for the rest. `then` runs once the
    answer ended (or was cut), e.g. to replace the object or expire URLs.
    """

    times: int | None = 1
    ranged: bool | None = None
    key_glob: str | None = None
    status: int | None = None
    drop: bool = False
    code: str = "InternalError"
    message: str = "We encountered an internal error. Please try again."
    ignore_range: bool = False
    cut_after: int | None = None
    stall_after: int | None = None
    drip: float = 0.0
    drip_bytes: int = 16 * 1024
    chunked: bool = False
    corrupt_at: int | None = None
    short_range: int | None = None
    then: Callable[[], object] | None = None
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1, or None for forever")
        if self.short_range is not None and self.short_range < 1:
            raise ValueError("short_range must be at least 1 byte")
        if self.cut_after is not None and self.stall_after is not None:
            raise ValueError("give cut_after or stall_after, not both")
        if self.drip < 0 or self.drip_bytes < 1:
            raise ValueError("drip must be >= 0 and drip_bytes >= 1")

    def matches(self, key: str, ranged: bool) -> bool:
        if self.ranged is not None and self.ranged != ranged:
            return False
        if self.short_range is not None and not ranged:
            return False  # a 206 answers a Range only
        return self.key_glob is None or path_matches(self.key_glob, key)


@dataclass
class _Issued:
    deadline: float
    signed_headers: tuple[str, ...]


class FakeS3:
    """Serves objects behind pre-signed URLs whose signature covers the exact raw bytes.

    Like S3: a re-quoted URL gets 403 SignatureDoesNotMatch; an `Authorization` header as
    well gets 400; HEAD on a GET-signed URL gets 403; an expired URL gets 403 AccessDenied
    "Request has expired" (checked when the request starts); Range, If-Match, 412 and 416
    behave as documented; the content type is binary/octet-stream; a gzip-encoded object
    is served as stored.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        url_lifetime: float = 300.0,
        bucket: str = "tl-results",
        region: str = "eu-west-1",
        ssl: ssl_module.SSLContext | None = None,
    ) -> None:
        if not url_lifetime > 0:
            raise ValueError("url_lifetime must be positive")
        if ssl is not None and not isinstance(ssl, ssl_module.SSLContext):
            raise TypeError(f"ssl must be a server-side ssl.SSLContext, got {type(ssl).__name__}")
        self._ssl = ssl
        self._host = host
        self._requested_port = port
        self.url_lifetime = url_lifetime
        #: What `presign` signs by default; S3 SDKs sign only "host" for a plain GET.
        self.signed_headers: tuple[str, ...] = ("host",)
        self.bucket = bucket
        self.region = region
        self._secret = secrets.token_bytes(32)
        self._objects: dict[str, S3Object] = {}
        self._issued: dict[str, _Issued] = {}
        self._faults: list[S3Fault] = []
        self.journal: list[S3Request] = []
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._closing = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("a FakeS3 can be started once")
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=_SHUTDOWN_TIMEOUT, access_log=None
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._requested_port, ssl_context=self._ssl)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def aclose(self) -> None:
        self._closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeS3:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("the fake S3 is not started")
        host = f"[{self._host}]" if ":" in self._host else self._host
        scheme = "http" if self._ssl is None else "https"
        return f"{scheme}://{host}:{self._port}"

    # -- objects -------------------------------------------------------------------------

    def raw_path(self, key: str, *, encode_slash: bool = False) -> str:
        """The URL path of `key`, quoted the way S3 SDKs do (`'` and spaces encoded)."""
        return f"/{self.bucket}/" + quote(key, safe="~" if encode_slash else "/~")

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_encoding: str | None = None,
        multipart_etag: bool = False,
        encode_slash: bool = False,
    ) -> S3Object:
        """Store `data` as is (a gzip body stays gzip), replacing any object under `key`."""
        return self._store(key, StoredBytes(data), content_encoding, multipart_etag, encode_slash)

    def put_generated(
        self,
        key: str,
        size: int,
        *,
        seed: int = 0,
        multipart_etag: bool = False,
        encode_slash: bool = False,
    ) -> S3Object:
        """Store a `{"records": [...]}` document of `size` bytes generated on the fly."""
        return self._store(key, GeneratedJson(size, seed), None, multipart_etag, encode_slash)

    def _store(
        self,
        key: str,
        body: Body,
        content_encoding: str | None,
        multipart_etag: bool,
        encode_slash: bool,
    ) -> S3Object:
        if multipart_etag:
            # Multipart uploads get the MD5 of the parts' MD5s plus a part count: not the body's.
            etag = f'"{hashlib.md5(uuid.uuid4().bytes, usedforsecurity=False).hexdigest()}-3"'
        else:
            etag = f'"{body.md5_hex()}"'
        stored = S3Object(
            key=key,
            raw_path=self.raw_path(key, encode_slash=encode_slash),
            body=body,
            etag=etag,
            content_encoding=content_encoding,
        )
        self._objects = {k: o for k, o in self._objects.items() if o.key != key}
        self._objects[stored.raw_path] = stored
        return stored

    def get(self, key: str) -> S3Object:
        for stored in self._objects.values():
            if stored.key == key:
                return stored
        raise KeyError(f"no object {key!r}")

    def delete(self, key: str) -> None:
        self._objects = {k: o for k, o in self._objects.items() if o.key != key}

    # -- URLs ----------------------------------------------------------------------------

    def presign(
        self,
        key: str,
        *,
        lifetime: float | None = None,
        signed_headers: tuple[str, ...] | None = None,
    ) -> str:
        """A fresh pre-signed GET URL for `key`, valid `lifetime` seconds (default url_lifetime).

        The query carries values that need percent-encoding (`%2F`, `%2B`, `%3D`), like the
        credential scope and session token of real URLs, so any re-quoting breaks it.
        """
        stored = self.get(key)
        lifetime = self.url_lifetime if lifetime is None else lifetime
        signed_headers = self.signed_headers if signed_headers is None else signed_headers
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        credential = f"AKIAFAKEFAKEFAKE/{stamp[:8]}/{self.region}/s3/aws4_request"
        token = base64.b64encode(secrets.token_bytes(30) + b"\xfb\xff").decode()
        params = [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", credential),
            ("X-Amz-Date", stamp),
            ("X-Amz-Expires", str(max(1, math.ceil(lifetime)))),
            ("X-Amz-SignedHeaders", ";".join(signed_headers)),
            ("X-Amz-Security-Token", token),
        ]
        query = "&".join(f"{name}={quote(value, safe='')}" for name, value in params)
        signature = self._sign("GET", stored.raw_path, query)
        self._issued[signature] = _Issued(
            deadline=time.monotonic() + lifetime,
            signed_headers=tuple(h.lower() for h in signed_headers),
        )
        return f"{self.base_url}{stored.raw_path}?{query}&X-Amz-Signature={signature}"

    def expire_urls(self) -> None:
        """Make every URL issued so far answer "Request has expired" from now on."""
        for issued in self._issued.values():
            issued.deadline = -math.inf

    def _sign(self, method: str, raw_path: str, raw_query: str) -> str:
        message = f"{method}\n{raw_path}\n{raw_query}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    # -- faults and journal --------------------------------------------------------------

    def inject(
        self,
        *,
        times: int | None = 1,
        ranged: bool | None = None,
        key_glob: str | None = None,
        status: int | None = None,
        drop: bool = False,
        code: str = "InternalError",
        message: str = "We encountered an internal error. Please try again.",
        ignore_range: bool = False,
        cut_after: int | None = None,
        stall_after: int | None = None,
        drip: float = 0.0,
        drip_bytes: int = 16 * 1024,
        chunked: bool = False,
        corrupt_at: int | None = None,
        short_range: int | None = None,
        then: Callable[[], object] | None = None,
    ) -> S3Fault:
        """Add a fault rule (see S3Fault); rules match in insertion order."""
        rule = S3Fault(
            times=times,
            ranged=ranged,
            key_glob=key_glob,
            status=status,
            drop=drop,
            code=code,
            message=message,
            ignore_range=ignore_range,
            cut_after=cut_after,
            stall_after=stall_after,
            drip=drip,
            drip_bytes=drip_bytes,
            chunked=chunked,
            corrupt_at=corrupt_at,
            short_range=short_range,
            then=then,
        )
        self._faults.append(rule)
        return rule

    def clear_faults(self) -> None:
        self._faults.clear()

    def _take_fault(self, key: str, ranged: bool) -> S3Fault | None:
        for rule in self._faults:
            if rule.matches(key, ranged):
                rule.fired += 1
                if rule.times is not None and rule.fired >= rule.times:
                    self._faults.remove(rule)
                return rule
        return None

    def requests(self, method: str | None = None) -> list[S3Request]:
        return [r for r in self.journal if method_matches(method, r.method)]

    def in_flight(self) -> int:
        return sum(1 for r in self.journal if r.in_flight)

    # -- serving -------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path, _, query = request.raw_path.partition("?")
        entry = S3Request(
            method=request.method,
            path=path,
            query=query,
            headers=dict(request.headers),
            started=time.monotonic(),
        )
        self.journal.append(entry)
        try:
            return await self._answer(request, entry, path, query)
        finally:
            entry.finished = time.monotonic()

    async def _answer(
        self, request: web.Request, entry: S3Request, path: str, query: str
    ) -> web.StreamResponse:
        head = request.method == "HEAD"
        if request.method not in ("GET", "HEAD"):
            return _error(entry, 405, "MethodNotAllowed", "The method is not allowed.", head)
        params = [p.partition("=") for p in query.split("&") if p]
        signature = next((v for k, _, v in params if k == "X-Amz-Signature"), None)
        if "Authorization" in request.headers and signature is not None:
            return _error(entry, 400, "InvalidArgument", _ONE_AUTH, head)
        if signature is None:
            return _error(entry, 403, "AccessDenied", "Access Denied", head)
        unsigned = "&".join(p for p in query.split("&") if not p.startswith("X-Amz-Signature="))
        expected = self._sign(request.method, path, unsigned)
        issued = self._issued.get(signature)
        if not hmac.compare_digest(expected, signature) or issued is None:
            return _error(entry, 403, "SignatureDoesNotMatch", _MISMATCH, head)
        if time.monotonic() >= issued.deadline:
            return _error(entry, 403, "AccessDenied", "Request has expired", head, _expiry(params))
        if "range" in issued.signed_headers and "Range" in request.headers:
            # The URL was signed without this Range value: the signatures cannot agree.
            return _error(entry, 403, "SignatureDoesNotMatch", _MISMATCH, head)
        stored = self._objects.get(path)
        if stored is None:
            return _error(entry, 404, "NoSuchKey", "The specified key does not exist.", head)
        wanted = request.headers.get("Range")
        rule = self._take_fault(stored.key, wanted is not None)
        try:
            return await self._serve(request, entry, stored, wanted, rule)
        finally:
            if rule is not None and rule.then is not None:
                rule.then()

    async def _serve(
        self,
        request: web.Request,
        entry: S3Request,
        stored: S3Object,
        wanted: str | None,
        rule: S3Fault | None,
    ) -> web.StreamResponse:
        head = request.method == "HEAD"
        if rule is not None and rule.drop:
            transport = request.transport
            if transport is not None:
                transport.abort()
            return web.Response()  # never sent: the connection is gone
        if rule is not None and rule.status is not None:
            return _error(entry, rule.status, rule.code, rule.message, head)
        if_match = request.headers.get("If-Match")
        if if_match is not None and if_match.strip() not in (stored.etag, "*"):
            return _error(
                entry, 412, "PreconditionFailed", "At least one of the pre-conditions failed", head
            )
        size = stored.size
        span = None if rule is not None and rule.ignore_range else _parse_range(wanted, size)
        if span == "unsatisfiable":
            refusal = _error(
                entry, 416, "InvalidRange", "The requested range is not satisfiable", head
            )
            refusal.headers["Content-Range"] = f"bytes */{size}"
            return refusal
        headers = {
            "ETag": stored.etag,
            "Content-Type": stored.content_type,
            "Accept-Ranges": "bytes",
            "Last-Modified": formatdate(stored.last_modified, usegmt=True),
        }
        if stored.content_encoding:
            headers["Content-Encoding"] = stored.content_encoding
        start, stop, status = 0, size, 200
        if isinstance(span, tuple):
            start, stop = span
            if rule is not None and rule.short_range is not None:
                # Less than asked, and saying so: as legal as a whole range.
                stop = min(stop, start + rule.short_range)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        response = web.StreamResponse(status=status, headers=headers)
        entry.status = status
        if rule is not None and rule.chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = stop - start
        await response.prepare(request)
        if head:
            return response
        try:
            await self._send_body(request, response, entry, stored, start, stop, rule)
        except ConnectionError:
            entry.hung_up = True  # the client went away mid-body: its choice, not an error
        except asyncio.CancelledError:
            entry.hung_up = True  # handler_cancellation: the client closed the connection
            raise
        return response

    async def _send_body(
        self,
        request: web.Request,
        response: web.StreamResponse,
        entry: S3Request,
        stored: S3Object,
        start: int,
        stop: int,
        rule: S3Fault | None,
    ) -> None:
        limit = None
        if rule is not None:
            limit = rule.cut_after if rule.cut_after is not None else rule.stall_after
        piece = rule.drip_bytes if rule is not None and rule.drip > 0 else DEFAULT_PIECE
        pieces = _limited(stored.body.read(start, stop, piece), limit)
        if rule is not None and rule.corrupt_at is not None:
            pieces = _corrupted(pieces, rule.corrupt_at)
        for chunk in pieces:
            await response.write(chunk)
            entry.bytes_sent += len(chunk)
            if rule is not None and rule.drip > 0:
                await asyncio.sleep(rule.drip)
        if rule is not None and rule.cut_after is not None and rule.cut_after <= stop - start:
            entry.cut = True
            transport = request.transport
            if transport is not None:
                # close, not abort: the bytes already written reach the client before the FIN.
                transport.close()
            return
        if rule is not None and rule.stall_after is not None and rule.stall_after < stop - start:
            # Quiet until the client gives up (the handler is cancelled) or the server closes.
            await self._closing.wait()
            return
        await response.write_eof()


_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method."
)


def _header(headers: dict[str, str], name: str) -> str | None:
    lower = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lower), None)


def _limited(pieces: Iterator[bytes], limit: int | None) -> Iterator[bytes]:
    if limit is None:
        yield from pieces
        return
    left = limit
    for piece in pieces:
        if left <= 0:
            return
        yield piece[:left]
        left -= len(piece)


def _corrupted(pieces: Iterator[bytes], at: int) -> Iterator[bytes]:
    seen = 0
    for piece in pieces:
        if seen <= at < seen + len(piece):
            flipped = bytearray(piece)
            flipped[at - seen] ^= 0xFF
            piece = bytes(flipped)
        seen += len(piece)
        yield piece


def _parse_range(value: str | None, size: int) -> tuple[int, int] | str | None:
    """(start, stop) for one satisfiable byte range, "unsatisfiable", or None to ignore it."""
    if value is None or not value.startswith("bytes=") or "," in value:
        return None
    first, dash, last = value[len("bytes=") :].strip().partition("-")
    if not dash:
        return None
    try:
        if not first:
            suffix = int(last)
            if suffix <= 0:
                return "unsatisfiable"
            return max(0, size - suffix), size
        start = int(first)
        stop = size if not last else min(size, int(last) + 1)
    except ValueError:
        return None  # S3 ignores a Range it cannot read and sends the whole object
    if start >= size:
        return "unsatisfiable"
    if stop <= start:
        return None
    return start, stop


def _expiry(params: list[tuple[str, str, str]]) -> dict[str, str]:
    values = {k: v for k, _, v in params}
    return {
        "X-Amz-Expires": values.get("X-Amz-Expires", ""),
        "ServerTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _error(
    entry: S3Request,
    status: int,
    code: str,
    message: str,
    head: bool,
    extra: dict[str, str] | None = None,
) -> web.Response:
    entry.status = status
    if head:
        # S3 answers HEAD errors with no body at all.
        return web.Response(status=status)
    fields = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in (extra or {}).items())
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>{fields}"
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId>"
        f"<HostId>{base64.b64encode(secrets.token_bytes(24)).decode()}</HostId></Error>"
    )
    return web.Response(status=status, body=body.encode(), content_type="application/xml")
