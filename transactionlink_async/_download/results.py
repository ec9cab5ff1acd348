"""get_result, stream_result and download_result: a result inline or behind a pre-signed link."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import attrs

from .._handle import ClientHandle
from .._request import ApiRequest, parse_json
from .._threads import compute
from .._transport import BodyTooLarge, RawResponse, join_pieces
from .._validate import check_id
from ..errors import InvalidResponseError, ResultDownloadError, ResultTooLargeError
from .atomic import AtomicFile
from .decide import REDIRECT_MAX, redirect_in_body, redirect_target, wants_md5
from .defaults import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_RESULT_BYTES,
    DEFAULT_WRITE_SIZE,
)
from .gzip import Gunzip, GzipError, is_gzip
from .json_whole import loads_sharing_the_gil
from .remote import RemoteBody, TransferStats
from .s3_session import S3Session
from .sinks import DiskSink, Md5, MemorySink, ProgressCallback, pump
from .stream import ResultStream

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

# Bytes taken from the socket per read while downloading.
_DOWNLOAD_READ = 1024 * 1024
# Bodies larger than this are parsed or inflated in a worker thread (one that gives the
# GIL back as it goes): on the event loop they would hold every other task up.
_OFF_LOOP = 1024 * 1024


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

    @classmethod
    def inline(cls, path: Path, *, size: int, md5: str | None) -> DownloadedResult:
        """A result the API answered inline: nothing was fetched from the storage."""
        return cls(
            path=path,
            size=size,
            md5=md5,
            etag=None,
            md5_verified=False,
            redirected=False,
            attempts=0,
            resumes=0,
            restarts=0,
            url_refreshes=0,
            content_encoding=None,
        )

    @classmethod
    def fetched(
        cls,
        path: Path,
        *,
        size: int,
        md5: str | None,
        md5_verified: bool,
        etag: str | None,
        content_encoding: str | None,
        stats: TransferStats,
    ) -> DownloadedResult:
        """A result read from behind a pre-signed link, with what the transfer took."""
        return cls(
            path=path,
            size=size,
            md5=md5,
            etag=etag,
            md5_verified=md5_verified,
            redirected=True,
            attempts=stats.attempts,
            resumes=stats.resumes,
            restarts=stats.restarts,
            url_refreshes=stats.url_refreshes,
            content_encoding=content_encoding,
        )


class Results:
    """get_result / stream_result / download_result, on behalf of the workflows resource."""

    def __init__(self, client: ClientHandle) -> None:
        self._client = client

    def _session(self) -> S3Session:
        # The client's one storage pool (shared by its views), with this view's timeouts.
        return self._client.storage

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
            in_flight=self._client.lifecycle.in_flight,
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
        if len(answer) > _OFF_LOOP:
            data = await _compute(_parse_large_answer, answer, request, off_loop=True)
        else:
            data = parse_json(answer, request)
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
            sink = MemorySink(
                max_bytes,
                lambda size: _too_large(execution_id, size, max_bytes),
                Md5(lambda: wants_md5(True, body.etag)),
            )
            await pump(body, sink, verify=True)
        finally:
            body.close()
        parts, sink.parts = sink.parts, []
        encoding = body.content_encoding
        return await _compute(
            _parse_result,
            parts,
            encoding,
            max_bytes,
            execution_id,
            body.where,
            # Gzip may inflate a small body into a large one: always off the loop.
            off_loop=sum(map(len, parts)) > _OFF_LOOP or is_gzip(encoding),
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
        # The whole download is one call in flight: closing the client waits until its
        # temporary file is gone.
        with self._client.lifecycle.in_flight():
            return await self._download(
                execution_id, destination, on_progress, max_attempts, write_size, verify_md5
            )

    async def _download(
        self,
        execution_id: str,
        destination: str | os.PathLike[str],
        on_progress: ProgressCallback | None,
        max_attempts: int,
        write_size: int,
        verify_md5: bool,
    ) -> DownloadedResult:
        # First, so a bad destination fails before anything is fetched.
        file = await AtomicFile.create(destination)
        sink: DiskSink | None = None
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
                remote = body
                sink = DiskSink(
                    file,
                    on_progress=on_progress,
                    total=lambda: remote.total,
                    batch_size=write_size,
                    md5=Md5(lambda: wants_md5(bool(verify_md5), remote.etag)),
                )
                digest, verified = await pump(body, sink, verify=bool(verify_md5))
                body.close()
            else:
                inline = response.body
                sink = DiskSink(
                    file,
                    on_progress=on_progress,
                    total=lambda: len(inline),
                    batch_size=write_size,
                    # Inline bytes are hashed always: cheap at their size, and useful.
                    md5=Md5(lambda: True),
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
        if body is None:
            return DownloadedResult.inline(file.destination, size=size, md5=digest)
        return DownloadedResult.fetched(
            file.destination,
            size=size,
            md5=digest,
            md5_verified=verified,
            etag=body.etag,
            content_encoding=body.content_encoding,
            stats=body.stats,
        )


def _result_request(execution_id: str, max_body: int | None) -> ApiRequest:
    return ApiRequest(method="GET", path=f"/workflows/{execution_id}/result", max_body=max_body)


async def _compute(fn: Callable[..., T], *args: Any, off_loop: bool) -> T:
    """`fn(*args)`, in a worker thread when it would hold the event loop for milliseconds."""
    if not off_loop:
        return fn(*args)
    # Pure computation with nothing to clean up: a cancelled caller need not wait for it.
    return await compute(fn, *args)


def _parse_large_answer(body: bytes, request: ApiRequest) -> Any:
    """`parse_json` for an answer of megabytes, in a worker thread that lets the loop run."""
    try:
        return loads_sharing_the_gil(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidResponseError(
            f"{request.method} {request.path} answered with a body that is not JSON"
        ) from exc


def _parse_result(
    parts: list[bytes], encoding: str | None, limit: int, execution_id: str, where: str
) -> Any:
    """The JSON of a result's bytes as stored, in pieces: gunzipped (within `limit`) if
    need be. Joined here, in the worker thread for a large result, as the copy is long."""
    raw = join_pieces(parts)
    text = _decoded(raw, encoding, limit, execution_id)
    try:
        # In a worker thread for large results (see _compute): one that shares the GIL.
        return loads_sharing_the_gil(text)
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
