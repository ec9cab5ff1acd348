"""Reading one pre-signed object to its end across as many requests as it takes."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager

import anyio
import attrs

from .._retry import RetryPolicy, backoff_delay
from .._session import NoAnswer
from ..errors import ResultDownloadError
from .decide import (
    Accept,
    Complete,
    Fail,
    Refresh,
    Retry,
    StartOver,
    check_download_url,
    describe_url,
    int_header,
    judge,
    resumable,
    url_lifetime,
)
from .pace import Pacer
from .s3_session import S3Response, S3Session

__all__ = ["RemoteBody", "Restarted", "TransferStats"]

logger = logging.getLogger("transactionlink_async")

# A link this close to its expiry is renewed before a resume: the request must reach the
# storage while the link is still valid.
_EXPIRY_MARGIN = 5.0


@attrs.frozen
class Restarted:
    """What `read` returns when the bytes read so far are void: the next read starts at 0."""

    reason: str


@attrs.define
class TransferStats:
    """What reading one object took: requests sent, resumes, restarts and fresh links."""

    #: GETs sent to the storage.
    attempts: int = 0
    #: Reads resumed with Range after a break.
    resumes: int = 0
    #: Reads started over from byte 0.
    restarts: int = 0
    #: Fresh links asked from the API because the previous one expired.
    url_refreshes: int = 0


class RemoteBody:
    """The bytes of one pre-signed object, resumed with Range + If-Match when a read breaks.

    `read()` returns the next bytes in order and b"" once all `total` bytes came. Behind it:
    a dropped or truncated answer is resumed where it stopped; an expired link (or one
    about to expire) is replaced through `refresh` (which asks the API again); an object
    that changed, or a server that ignores Range, starts the read over from byte 0, which
    `read` reports by returning Restarted (or raising ResultDownloadError when
    `may_restart` is False, for readers who already handed bytes on). At most
    `max_attempts` GETs are sent; `stats` counts what it took. `in_flight` wraps every
    read (the client's: closing it ends a read at once with ClientClosedError).
    """

    def __init__(
        self,
        session: S3Session,
        url: str,
        *,
        refresh: Callable[[], Awaitable[str]],
        max_attempts: int,
        retry: RetryPolicy,
        read_size: int,
        may_restart: bool,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        in_flight: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
    ) -> None:
        self._session = session
        self._in_flight = in_flight
        self._refresh = refresh
        self._max_attempts = max_attempts
        self._retry = retry
        self._read_size = read_size
        self._may_restart = may_restart
        self._clock = clock
        self._wall_clock = wall_clock
        self._use_url(url)
        #: Bytes read so far, i.e. where the next byte belongs.
        self.offset: int = 0
        #: The object's size, once an answer told it.
        self.total: int | None = None
        #: The ETag of the answer the bytes so far belong to.
        self.etag: str | None = None
        self.content_encoding: str | None = None
        self.stats: TransferStats = TransferStats()
        self._response: S3Response | None = None
        self._complete = False
        self._restarted: str | None = None
        self._last_failure = "no request sent"
        self._delay = 0.0
        self._quiet_failures = 0
        self._moved = False
        self._pacer = Pacer()

    @property
    def where(self) -> str:
        """Host and path of the current link (never its query, which holds the signature)."""
        return self._where

    def _use_url(self, url: str) -> None:
        self._url = check_download_url(url)
        self._where = describe_url(self._url)
        lifetime = url_lifetime(self._url, now=self._wall_clock())
        self._deadline = self._clock() + lifetime - min(_EXPIRY_MARGIN, lifetime / 10)

    async def open(self) -> None:
        """Send the first GET so that size, ETag and encoding are known before any read."""
        if self._response is None and not self._complete:
            with self._in_flight():
                await self._open()

    async def read(self) -> bytes | Restarted:
        """The next bytes; b"" once the whole object came (its size checked when announced)."""
        with self._in_flight():
            return await self._read()

    async def _read(self) -> bytes | Restarted:
        while True:
            response = self._response
            if response is None:
                if self._complete:
                    return b""
                await self._open()
                if self._restarted is not None:
                    reason, self._restarted = self._restarted, None
                    return Restarted(reason)
                continue
            try:
                chunk = await response.read(self._read_size)
            except NoAnswer as exc:
                self._drop()
                self._failed(f"the transfer broke off at byte {self.offset} ({exc})")
                continue
            if chunk:
                self.offset += len(chunk)
                self._moved = True
                if self.total is not None and self.offset > self.total:
                    self._drop()
                    self._start_over(f"the storage sent more than the {self.total} bytes announced")
                    self._failed(self._last_failure)
                    continue
                await self._pacer.pace()
                return chunk
            self._drop()
            if self.total is not None and self.offset < self.total:
                self._failed(f"the body ended at byte {self.offset} of {self.total}")
                continue
            self._complete = True
            return b""

    def restart(self, reason: str) -> None:
        """Void everything read (e.g. it failed verification); the next `read` starts at 0."""
        self._drop()
        self._complete = False
        self._start_over(reason)
        self._restarted = None  # the caller knows already
        self._last_failure = reason

    def close(self) -> None:
        """Let go of the current answer, if any."""
        self._drop()

    def _drop(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            response.close()

    def _start_over(self, reason: str) -> None:
        if self.offset > 0 and not self._may_restart:
            raise ResultDownloadError(
                f"reading the result from {self._where} cannot continue: {reason}; the bytes "
                "already handed on cannot be taken back, so read it again from the start"
            )
        if self.offset > 0:
            self._restarted = reason
        logger.debug("result download from %s starts over: %s", self._where, reason)
        self.offset = 0
        self.total = None
        self.etag = None
        self.stats.restarts += 1
        self._last_failure = reason

    def _failed(self, reason: str, retry_after: float | None = None) -> None:
        self._last_failure = reason
        if self._moved:
            # The last request carried bytes: resume at once.
            self._quiet_failures = 0
            self._delay = 0.0
        else:
            self._delay = (
                min(retry_after, self._retry.max_retry_after)
                if retry_after is not None
                else backoff_delay(self._retry, self._quiet_failures)
            )
            self._quiet_failures += 1

    async def _renew_url(self, why: str) -> None:
        logger.debug(
            "result download from %s: asking the API for a fresh link (%s)", self._where, why
        )
        self._use_url(await self._refresh())
        self.stats.url_refreshes += 1

    async def _open(self) -> None:
        while True:
            if self.stats.attempts >= self._max_attempts:
                raise ResultDownloadError(
                    f"gave up reading the result from {self._where} after {self.stats.attempts} "
                    f"requests; the last failure: {self._last_failure}"
                )
            if self._delay > 0:
                delay, self._delay = self._delay, 0.0
                await anyio.sleep(delay)
            if self.stats.attempts > 0 and self._clock() >= self._deadline:
                await self._renew_url("the link is about to expire")
            if self.offset > 0 and not (self.etag and resumable(self._url)):
                why = "the link signs more than the host" if self.etag else "no ETag to match"
                self._start_over(f"a resume is impossible ({why})")
            headers = {"Accept-Encoding": "identity"}
            offset = self.offset
            if offset > 0 and self.etag:
                headers["Range"] = f"bytes={offset}-"
                headers["If-Match"] = self.etag
            self.stats.attempts += 1
            self._moved = False
            try:
                response = await self._session.get(self._url, headers)
            except NoAnswer as exc:
                self._failed(f"no answer from {self._where} ({exc})")
                continue
            logger.debug(
                "GET %s (from byte %d, attempt %d): HTTP %d",
                self._where,
                offset,
                self.stats.attempts,
                response.status,
            )
            if self._settle(response, offset, await _error_body(response)):
                return

    def _settle(self, response: S3Response, offset: int, error_body: bytes) -> bool:
        """Act on an answer; True when it is the one to read (or nothing is left)."""
        verdict = judge(
            status=response.status,
            headers=response.headers,
            offset=offset,
            etag=self.etag,
            total=self.total,
            error_body=error_body,
        )
        if isinstance(verdict, Accept):
            self._response = response
            self.total = verdict.total
            self.etag = verdict.etag
            if offset > 0:
                self.stats.resumes += 1
            else:
                self.content_encoding = response.headers.get("Content-Encoding")
            return True
        if isinstance(verdict, StartOver) and verdict.keep:
            # The whole object came in answer to a ranged request: read it from byte 0.
            try:
                self._start_over(verdict.reason)
            except BaseException:
                response.close()
                raise
            self._response = response
            self.total = int_header(response.headers.get("Content-Length"))
            self.etag = response.headers.get("ETag")
            self.content_encoding = response.headers.get("Content-Encoding")
            return True
        response.close()
        if isinstance(verdict, Complete):
            self._complete = True
            return True
        if isinstance(verdict, StartOver):
            self._start_over(verdict.reason)
        elif isinstance(verdict, Refresh):
            self._last_failure = verdict.reason
            self._renewal_due()
        elif isinstance(verdict, Retry):
            self._failed(f"{self._where} answered {verdict.reason}", verdict.retry_after)
        elif isinstance(verdict, Fail):
            raise ResultDownloadError(f"reading the result from {self._where}: {verdict.reason}")
        return False

    def _renewal_due(self) -> None:
        # The next round of _open renews the link before sending again.
        self._deadline = -float("inf")


async def _error_body(response: S3Response) -> bytes:
    if response.status in (200, 206):
        return b""
    return await response.read_error_body()
