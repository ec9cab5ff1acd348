"""Results of any size: inline or behind a pre-signed link, read whole, streamed, or downloaded."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import inspect
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio
import attrs

from .._handle import ClientHandle
from .._request import ApiRequest, parse_json
from .._threads import run_blocking, settle, start
from .._transport import BodyTooLarge, RawResponse
from .._validate import check_id
from ..errors import InvalidResponseError, ResultDownloadError, ResultTooLargeError
from .atomic import AtomicFile
from .decide import REDIRECT_MAX, md5_of_etag, redirect_in_body, redirect_target
from .gzip import Gunzip, GzipError, is_gzip
from .json_items import json_items
from .remote import BodyRestarted, RemoteBody
from .s3_session import S3Session

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_RESULT_BYTES",
    "DEFAULT_WRITE_SIZE",
    "DownloadedResult",
    "ProgressCallback",
    "ResultStream",
    "Results",
]

logger = logging.getLogger("transactionlink_async")

T = TypeVar("T")

DEFAULT_MAX_RESULT_BYTES = 64 * 1024 * 1024
DEFAULT_CHUNK_SIZE = 256 * 1024
DEFAULT_MAX_ATTEMPTS = 5
#: Bytes handed to the disk per worker-thread hop: large, so file I/O never dominates.
DEFAULT_WRITE_SIZE = 4 * 1024 * 1024
# Bytes taken from the socket per read while downloading.
_DOWNLOAD_READ = 1024 * 1024
# Bodies larger than this are parsed or inflated in a worker thread: on the event loop
# they would hold every other task up for milliseconds.
_OFF_LOOP = 1024 * 1024

#: `on_progress(done_bytes, total_bytes_or_None)`; may return an awaitable, which is awaited.
ProgressCallback = Callable[[int, "int | None"], object]


@attrs.frozen(kw_only=True)
class DownloadedResult:
    """What `download_result` wrote, and what it took."""

    #: The destination, now holding the complete result.
    path: Path
    #: Bytes written.
    size: int
    #: MD5 of the bytes written (lower-case hex); computed for inline results and when the
    #: ETag is a plain MD5 to check it against, else None (hashing would only cost time).
    md5: str | None
    #: The storage's ETag of the object (None for an inline result).
    etag: str | None
    #: Whether `md5` was checked against the ETag (only a plain MD5 ETag allows it).
    md5_verified: bool
    #: Whether the result came through a pre-signed link rather than inline.
    redirected: bool
    #: Requests sent to the storage (0 for an inline result).
    attempts: int
    #: Reads resumed with Range after a break, and reads started over from byte 0.
    resumes: int
    restarts: int
    #: Fresh links asked from the API because the previous one expired.
    url_refreshes: int
    #: The stored object's Content-Encoding (the bytes are saved as stored, not decoded).
    content_encoding: str | None


class _Sink(Protocol):
    async def write(self, chunk: bytes) -> None: ...

    async def reset(self) -> None: ...

    async def finish(self) -> str | None: ...


class _Md5:
    """The MD5 of the bytes since the last reset, kept only when `wanted()` at the first bytes.

    MD5 runs at well under a gigabyte per second: worth it only when an ETag can check it.
    """

    def __init__(self, wanted: Callable[[], bool]) -> None:
        self._wanted = wanted
        self._digest: Any = None
        self._decided = False

    def reset(self) -> None:
        self._digest = None
        self._decided = False

    def target(self) -> Any:
        """The hash object to feed the next bytes to, or None when none is kept."""
        if not self._decided:
            self._decided = True
            self._digest = hashlib.md5(usedforsecurity=False) if self._wanted() else None
        return self._digest

    def hexdigest(self) -> str | None:
        return None if self._digest is None else self._digest.hexdigest()


def _checkable(body: RemoteBody, verify: bool) -> Callable[[], bool]:
    return lambda: verify and md5_of_etag(body.etag) is not None


class ResultStream:
    """A result's bytes, chunk by chunk, in memory that does not grow with the result's size.

    Use `async for chunk in stream` or `stream.json_items(prefix)`, once, inside the
    `async with tl.workflows.stream_result(...)` block. A broken transfer is resumed
    where it stopped; the size (and the MD5 when the ETag is one) is checked at the end,
    raising ResultDownloadError when the bytes were wrong.
    """

    def __init__(
        self,
        *,
        inline: bytes | None = None,
        body: RemoteBody | None = None,
        chunk_size: int,
        verify_md5: bool = True,
    ) -> None:
        self._inline = memoryview(inline) if inline is not None else None
        self._body = body
        self._chunk_size = chunk_size
        self._md5 = _Md5(_checkable(body, verify_md5)) if body is not None else None
        self._claimed = False
        self._closed = False
        self._position = 0
        #: Bytes handed out so far.
        self.bytes_read = 0

    def __repr__(self) -> str:
        source = f"redirected to {self._body.where}" if self._body is not None else "inline"
        return f"<ResultStream {source}, {self.bytes_read} of {self.content_length} bytes read>"

    @property
    def redirected(self) -> bool:
        """Whether the result came through a pre-signed link rather than inline."""
        return self._body is not None

    @property
    def content_length(self) -> int | None:
        """The body's size in bytes as stored, when known."""
        if self._inline is not None:
            return len(self._inline)
        return self._body.total if self._body is not None else None

    @property
    def etag(self) -> str | None:
        return self._body.etag if self._body is not None else None

    @property
    def content_encoding(self) -> str | None:
        """The stored object's Content-Encoding: chunks come as stored (e.g. still gzip)."""
        return self._body.content_encoding if self._body is not None else None

    def _claim(self) -> None:
        if self._claimed:
            raise RuntimeError("a ResultStream can be read once; open a new one to read again")
        self._claimed = True

    def __aiter__(self) -> ResultStream:
        self._claim()
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._next()
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def _next(self) -> bytes:
        if self._closed:
            raise RuntimeError("the ResultStream is closed; read it inside its `async with` block")
        if self._inline is not None:
            chunk = bytes(self._inline[self._position : self._position + self._chunk_size])
            self._position += len(chunk)
        else:
            assert self._body is not None
            assert self._md5 is not None
            try:
                chunk = await self._body.read()
            except BodyRestarted as exc:  # only before any byte was handed on
                raise ResultDownloadError(str(exc)) from None
            if chunk:
                digest = self._md5.target()
                if digest is not None:
                    digest.update(chunk)
            else:
                _, mismatch = _md5_verdict(self._md5.hexdigest(), self._body.etag)
                if mismatch is not None:
                    raise ResultDownloadError(
                        f"the result read from {self._body.where} is corrupt: its {mismatch}; "
                        "read it again"
                    )
        self.bytes_read += len(chunk)
        return chunk

    def json_items(self, prefix: str, *, use_float: bool = False) -> AsyncIterator[Any]:
        """Each JSON value under `prefix` (ijson syntax, e.g. "records.item"), as it arrives.

        Numbers with a fraction come as `decimal.Decimal`, exactly as written, unless
        `use_float=True`. A gzip-encoded result is decoded on the way. Needs the `json`
        extra (ijson); its C backend is used when built.
        """
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        self._claim()
        return json_items(
            self._next, prefix, use_float=use_float, content_encoding=self.content_encoding
        )

    def close(self) -> None:
        """Release the connection (also when the body was not read to its end)."""
        self._closed = True
        if self._body is not None:
            self._body.close()


class _MemorySink:
    """Collects a body for `get_result`, refusing more than `limit` bytes."""

    def __init__(self, limit: int, too_large: Callable[[int | None], Exception], md5: _Md5) -> None:
        self._limit = limit
        self._too_large = too_large
        self.parts: list[bytes] = []
        self._held = 0
        self._md5 = md5

    async def write(self, chunk: bytes) -> None:
        self._held += len(chunk)
        if self._held > self._limit:
            raise self._too_large(None)
        self.parts.append(chunk)
        digest = self._md5.target()
        if digest is not None:
            digest.update(chunk)

    async def reset(self) -> None:
        self.parts.clear()
        self._held = 0
        self._md5.reset()

    async def finish(self) -> str | None:
        return self._md5.hexdigest()


class _DiskSink:
    """Writes a body to an AtomicFile in large batches, one batch on the disk while the next fills.

    Each batch is written and hashed in two worker threads at once (both release the GIL),
    while the event loop keeps reading the network. Progress is reported as batches land.
    """

    def __init__(
        self,
        file: AtomicFile,
        *,
        on_progress: ProgressCallback | None,
        total: Callable[[], int | None],
        batch_size: int,
        md5: _Md5,
    ) -> None:
        self._file = file
        self._on_progress = on_progress
        self._total = total
        self._batch_size = batch_size
        self._batch: list[bytes] = []
        self._held = 0
        self._pending: list[asyncio.Future[Any]] = []
        self._md5 = md5
        self.written = 0
        self._reported: tuple[int, int | None] | None = None

    async def write(self, chunk: bytes) -> None:
        self._batch.append(chunk)
        self._held += len(chunk)
        if self._held >= self._batch_size:
            await self._hand_over()

    async def _hand_over(self) -> None:
        await self._settle()
        if self._batch:
            batch, self._batch, self._held = self._batch, [], 0
            self._pending = [start(self._file.write, batch)]
            digest = self._md5.target()
            if digest is not None:
                self._pending.append(start(_hash, digest, batch))

    async def _settle(self) -> None:
        if self._pending:
            # A cancel waits for the batch still being written (see _threads.settle);
            # aclose then finds it ended, and the file can be removed.
            await settle(self._pending)
            jobs, self._pending = self._pending, []
            errors = [job.exception() for job in jobs]
            for error in errors:
                if error is not None:
                    raise error
            self.written += jobs[0].result()
            await self.report(self.written, self._total())

    async def report(self, done: int, total: int | None) -> None:
        if self._on_progress is None or self._reported == (done, total):
            return
        self._reported = (done, total)
        outcome = self._on_progress(done, total)
        if inspect.isawaitable(outcome):
            await outcome

    async def reset(self) -> None:
        await self._settle()
        self._batch, self._held = [], 0
        await run_blocking(self._file.truncate)
        self._md5.reset()
        self.written = 0
        await self.report(0, self._total())

    async def finish(self) -> str | None:
        await self._hand_over()
        await self._settle()
        return self._md5.hexdigest()

    async def aclose(self) -> None:
        """Wait for any batch still being written, then remove the file, whatever comes."""
        try:
            jobs, self._pending = self._pending, []
            await settle(jobs)
            for job in jobs:
                job.exception()  # the download already failed; this error adds nothing
        finally:
            await self._file.discard()


def _hash(digest: Any, chunks: list[bytes]) -> None:
    for chunk in chunks:
        digest.update(chunk)


async def _pump(body: RemoteBody, sink: _Sink, *, verify: bool) -> tuple[str | None, bool]:
    """Move the whole body into `sink`, starting over whenever the body or its MD5 says so.

    Returns the MD5 (when one was kept) and whether it was checked against the ETag.
    """
    while True:
        try:
            chunk = await body.read()
        except BodyRestarted:
            await sink.reset()
            continue
        if chunk:
            await sink.write(chunk)
            continue
        digest = await sink.finish()
        verified, mismatch = _md5_verdict(digest, body.etag) if verify else (False, None)
        if mismatch is None:
            return digest, verified
        logger.debug("result from %s failed its MD5 check; starting over", body.where)
        body.restart(f"the bytes' {mismatch}")
        await sink.reset()


def _md5_verdict(digest: str | None, etag: str | None) -> tuple[bool, str | None]:
    """(whether `digest` was checked against the ETag and matched, why it did not match).

    Nothing can be checked without a digest or with an ETag that is not a plain MD5.
    """
    expected = md5_of_etag(etag)
    if digest is None or expected is None:
        return False, None
    if digest == expected:
        return True, None
    return False, f"MD5 {digest} does not match the ETag's {expected}"


class Results:
    """get_result / stream_result / download_result, on behalf of the workflows resource."""

    def __init__(self, client: ClientHandle) -> None:
        self._client = client
        self._s3: S3Session | None = None

    def _session(self) -> S3Session:
        if self._s3 is None:
            session = S3Session(self._client.session_settings)
            self._client.lifecycle.on_close(session.aclose)
            self._s3 = session
        return self._s3

    async def _ask(self, execution_id: str, *, max_body: int | None = None) -> RawResponse:
        """`GET /workflows/{id}/result`, through the client's one door."""
        return await self._client.send(_result_request(execution_id, max_body))

    def _remote(
        self, execution_id: str, url: str, *, max_attempts: int, read_size: int, may_restart: bool
    ) -> RemoteBody:
        async def refresh() -> str:
            fresh = redirect_in_body((await self._ask(execution_id)).body)
            if fresh is None:
                raise ResultDownloadError(
                    "the API answered the result inline after redirecting to it before; start again"
                )
            return fresh

        return RemoteBody(
            self._session(),
            url,
            refresh=refresh,
            max_attempts=max_attempts,
            retry=self._client.retry_policy,
            read_size=read_size,
            may_restart=may_restart,
        )

    # -- get_result ----------------------------------------------------------------------

    async def get(self, execution_id: str, *, max_bytes: int) -> Any:
        check_id("execution_id", execution_id)
        _check_positive("max_bytes", max_bytes)
        # The answer may be a link of a few hundred bytes whatever max_bytes is: the API's
        # answer is read up to the size a link can take, and max_bytes is applied to the
        # result itself, inline or behind the link.
        request = _result_request(execution_id, max(max_bytes, REDIRECT_MAX))
        try:
            response = await self._client.send(request)
        except BodyTooLarge as exc:
            raise _too_large(execution_id, exc.size, max_bytes) from None
        answer = response.body
        if len(answer) > max_bytes and redirect_in_body(answer) is None:
            raise _too_large(execution_id, len(answer), max_bytes)
        data = await _compute(parse_json, answer, request, off_loop=len(answer) > _OFF_LOOP)
        url = redirect_target(data)
        if url is None:
            return data
        body = self._remote(
            execution_id,
            url,
            max_attempts=DEFAULT_MAX_ATTEMPTS,
            read_size=DEFAULT_CHUNK_SIZE,
            may_restart=True,
        )
        try:
            await body.open()
            if body.total is not None and body.total > max_bytes:
                # Refused on the announced size: not one byte of the body is read.
                raise _too_large(execution_id, body.total, max_bytes)
            sink = _MemorySink(
                max_bytes,
                lambda size: _too_large(execution_id, size, max_bytes),
                _Md5(_checkable(body, True)),
            )
            await _pump(body, sink, verify=True)
        finally:
            body.close()
        raw = b"".join(sink.parts)
        sink.parts.clear()
        encoding = body.content_encoding
        return await _compute(
            _parse_result,
            raw,
            encoding,
            max_bytes,
            execution_id,
            body.where,
            # Gzip may inflate a small body into a large one: always off the loop.
            off_loop=len(raw) > _OFF_LOOP or is_gzip(encoding),
        )

    # -- stream_result -------------------------------------------------------------------

    def stream(
        self, execution_id: str, *, chunk_size: int, max_attempts: int, verify_md5: bool
    ) -> contextlib.AbstractAsyncContextManager[ResultStream]:
        check_id("execution_id", execution_id)
        _check_positive("chunk_size", chunk_size)
        _check_positive("max_attempts", max_attempts)
        return self._open_stream(execution_id, chunk_size, max_attempts, bool(verify_md5))

    @contextlib.asynccontextmanager
    async def _open_stream(
        self, execution_id: str, chunk_size: int, max_attempts: int, verify_md5: bool
    ) -> AsyncIterator[ResultStream]:
        response = await self._ask(execution_id)
        url = redirect_in_body(response.body)
        if url is None:
            stream = ResultStream(inline=response.body, chunk_size=chunk_size)
        else:
            body = self._remote(
                execution_id,
                url,
                max_attempts=max_attempts,
                read_size=chunk_size,
                may_restart=False,
            )
            stream = ResultStream(body=body, chunk_size=chunk_size, verify_md5=verify_md5)
            try:
                await body.open()
            except BaseException:
                body.close()
                raise
        try:
            yield stream
        finally:
            stream.close()

    # -- download_result -----------------------------------------------------------------

    async def download(
        self,
        execution_id: str,
        destination: str | os.PathLike[str],
        *,
        on_progress: ProgressCallback | None,
        max_attempts: int,
        write_size: int,
        verify_md5: bool,
    ) -> DownloadedResult:
        check_id("execution_id", execution_id)
        if not isinstance(destination, (str, os.PathLike)):
            raise TypeError(f"destination must be a path, got {type(destination).__name__}")
        if on_progress is not None and not callable(on_progress):
            raise TypeError("on_progress must be a callable taking (done_bytes, total_bytes)")
        _check_positive("max_attempts", max_attempts)
        _check_positive("write_size", write_size)
        # First, so a bad destination fails before anything is fetched.
        file = await AtomicFile.create(destination)
        sink: _DiskSink | None = None
        body: RemoteBody | None = None
        try:
            response = await self._ask(execution_id)
            url = redirect_in_body(response.body)
            if url is not None:
                body = self._remote(
                    execution_id,
                    url,
                    max_attempts=max_attempts,
                    read_size=min(write_size, _DOWNLOAD_READ),
                    may_restart=True,
                )
                await body.open()
                sink = _DiskSink(
                    file,
                    on_progress=on_progress,
                    total=lambda: body.total if body is not None else None,
                    batch_size=write_size,
                    md5=_Md5(_checkable(body, bool(verify_md5))),
                )
                digest, verified = await _pump(body, sink, verify=bool(verify_md5))
                body.close()
            else:
                inline = response.body
                sink = _DiskSink(
                    file,
                    on_progress=on_progress,
                    total=lambda: len(inline),
                    batch_size=write_size,
                    md5=_Md5(lambda: True),
                )
                await sink.write(inline)
                digest, verified = await sink.finish(), False
            size = sink.written
            await sink.report(size, size)
            await file.commit()
        except BaseException:
            # Shielded from anyio's repeated cancels; asyncio's are waited out in _threads.
            with anyio.CancelScope(shield=True):
                if body is not None:
                    body.close()
                if sink is not None:
                    await sink.aclose()
                else:
                    await file.discard()
            raise
        return DownloadedResult(
            path=file.destination,
            size=size,
            md5=digest,
            etag=body.etag if body is not None else None,
            md5_verified=verified,
            redirected=body is not None,
            attempts=body.attempts if body is not None else 0,
            resumes=body.resumes if body is not None else 0,
            restarts=body.restarts if body is not None else 0,
            url_refreshes=body.url_refreshes if body is not None else 0,
            content_encoding=body.content_encoding if body is not None else None,
        )


def _result_request(execution_id: str, max_body: int | None) -> ApiRequest:
    return ApiRequest(method="GET", path=f"/workflows/{execution_id}/result", max_body=max_body)


async def _compute(fn: Callable[..., T], *args: Any, off_loop: bool) -> T:
    """`fn(*args)`, in a worker thread when it would hold the event loop for milliseconds."""
    if not off_loop:
        return fn(*args)
    # Pure computation with nothing to clean up: a cancelled caller need not wait for it.
    return await anyio.to_thread.run_sync(functools.partial(fn, *args), abandon_on_cancel=True)


def _parse_result(
    raw: bytes, encoding: str | None, limit: int, execution_id: str, where: str
) -> Any:
    """The JSON of a result's bytes as stored: gunzipped (within `limit`) if need be."""
    text = _decoded(raw, encoding, limit, execution_id)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidResponseError(
            f"the result of {execution_id} (from {where}) is not JSON"
        ) from exc


def _decoded(raw: bytes, encoding: str | None, limit: int, execution_id: str) -> bytes:
    """A gzip-encoded body decoded (within `limit`), anything else as it is."""
    if not is_gzip(encoding):
        return raw
    gunzip = Gunzip()
    gunzip.feed(raw)
    parts: list[bytes] = []
    size = 0
    try:
        while piece := gunzip.read(limit + 1 - size):
            parts.append(piece)
            size += len(piece)
            if size > limit:
                raise _too_large(execution_id, None, limit)
        gunzip.close()
    except GzipError as exc:
        # The bytes arrived whole (their size, and MD5 when the ETag has one, were checked):
        # the stored object itself is bad, and reading it again would not help.
        raise InvalidResponseError(
            f"the result of {execution_id} is stored as gzip, but {exc}"
        ) from None
    return b"".join(parts)


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _too_large(execution_id: str, size: int | None, limit: int) -> ResultTooLargeError:
    what = f"{size} bytes" if size is not None else f"more than {limit} bytes"
    return ResultTooLargeError(
        f"the result of {execution_id} is {what}, above max_bytes={limit}; use "
        "tl.workflows.stream_result() or tl.workflows.download_result() for large results",
        size=size,
        limit=limit,
    )
