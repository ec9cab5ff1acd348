"""Where result bytes go (memory or an atomic file), hashed as they pass; the pump filling them."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
from collections.abc import Callable
from typing import Any, Protocol

from .._threads import run_blocking, settle, start
from .atomic import AtomicFile
from .decide import md5_verdict
from .heap import keep_freed_batches
from .remote import RemoteBody, Restarted

__all__ = ["DiskSink", "Md5", "MemorySink", "ProgressCallback", "Sink", "pump"]

logger = logging.getLogger("transactionlink_async")

#: `on_progress(done_bytes, total_bytes_or_None)`; may return an awaitable, which is awaited.
ProgressCallback = Callable[[int, "int | None"], object]


class Sink(Protocol):
    """Where a body's bytes go; `reset` voids them, `finish` returns their MD5 if kept."""

    async def write(self, chunk: bytes) -> None: ...

    async def reset(self) -> None: ...

    async def finish(self) -> str | None: ...


class Md5:
    """The MD5 of the bytes since the last reset, kept only when `wanted()` at the first bytes.

    Whether it is wanted is decided by `decide.wants_md5` once the ETag is known.
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


class MemorySink:
    """Collects a body for `get_result`, refusing more than `limit` bytes."""

    def __init__(self, limit: int, too_large: Callable[[int | None], Exception], md5: Md5) -> None:
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


class DiskSink:
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
        md5: Md5,
    ) -> None:
        keep_freed_batches(batch_size)
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


async def pump(body: RemoteBody, sink: Sink, *, verify: bool) -> tuple[str | None, bool]:
    """Move the whole body into `sink`, starting over whenever the body or its MD5 says so.

    Returns the MD5 (when one was kept) and whether it was checked against the ETag.
    """
    while True:
        chunk = await body.read()
        if isinstance(chunk, Restarted):
            await sink.reset()
            continue
        if chunk:
            await sink.write(chunk)
            continue
        digest = await sink.finish()
        verified, mismatch = md5_verdict(digest, body.etag) if verify else (False, None)
        if mismatch is None:
            return digest, verified
        logger.debug("result from %s failed its MD5 check; starting over", body.where)
        body.restart(f"the bytes' {mismatch}")
        await sink.reset()
