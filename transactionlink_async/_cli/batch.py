"""`transactionlink batch FILE.jsonl --journal run.db`: launch, wait, download, and resume."""

from __future__ import annotations

import argparse
import hashlib
import re
from pathlib import Path
from typing import Any

import anyio
import attrs

from .. import TransactionLink
from .._threads import run_blocking
from ..errors import LaunchInDoubtError
from ..journal import Journal, SqliteJournal
from ..models import LaunchOutcome, WorkflowExecution, WorkflowStatus
from .batch_progress import BatchCounts, BatchProgress
from .batchfile import BatchFileError, check_file, read_requests
from .commands import UsageError
from .output import Output, error_json, is_failure

__all__ = ["MAX_LISTED", "batch", "result_name"]

#: Keys listed per kind of problem in the summary; the counts cover the rest.
MAX_LISTED = 100
#: Executions waited for at once (each costs one small request per poll interval).
WAIT_CONCURRENCY = 1000
#: Results downloaded at once.
DOWNLOAD_CONCURRENCY = 8

_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]{1,200}")


def result_name(key: str) -> str:
    """The file a key's result is saved to: the key itself when it is a safe file name,
    else `~` and a digest of it (never a safe name, so the two kinds cannot collide)."""
    if _SAFE_NAME.fullmatch(key) and key not in (".", ".."):
        return f"{key}.json"
    return "~" + hashlib.sha256(key.encode()).hexdigest()[:32] + ".json"


@attrs.define
class _Problems:
    """The first few problems of each kind, for the summary."""

    in_doubt: list[str] = attrs.field(factory=list)
    errors: list[dict[str, Any]] = attrs.field(factory=list)

    def doubt(self, key: str) -> None:
        if len(self.in_doubt) < MAX_LISTED:
            self.in_doubt.append(key)

    def error(self, key: str, stage: str, exc: BaseException) -> None:
        if len(self.errors) < MAX_LISTED:
            self.errors.append({"key": key, "stage": stage, "error": error_json(exc)})


class _Run:
    """One run of a batch: launches, then each execution's wait and download as it comes."""

    def __init__(
        self,
        tl: TransactionLink,
        journal: Journal,
        counts: BatchCounts,
        *,
        wait: bool,
        results: Path | None,
        timeout: float | None,
        progress: BatchProgress,
    ) -> None:
        self._tl = tl
        self._journal = journal
        self.counts = counts
        self.problems = _Problems()
        self._wait = wait
        self._results = results
        self._timeout = timeout
        self._progress = progress
        self._followers = anyio.Semaphore(WAIT_CONCURRENCY)
        self._downloads = anyio.Semaphore(DOWNLOAD_CONCURRENCY)

    def _changed(self) -> None:
        self._progress.update(self.counts)

    def _done(self, *, before: bool = False) -> None:
        self.counts.done += 1
        if before:
            self.counts.done_before += 1
        self._changed()

    async def launch_all(self, path: Path, concurrency: int) -> None:
        async with anyio.create_task_group() as followers:
            batch = self._tl.workflows.launch_many(
                read_requests(path), concurrency=concurrency, journal=self._journal
            )
            async with batch:
                async for outcome in batch:
                    execution = self._launched(outcome)
                    if execution is None or not self._wait:
                        self._done(before=outcome.resumed and not self._wait)
                        continue
                    # Waits for a free place first: a slow pipeline holds launching back.
                    await self._followers.acquire()
                    followers.start_soon(self._follow, outcome, execution)

    def _launched(self, outcome: LaunchOutcome) -> WorkflowExecution | None:
        key = outcome.request.key or ""
        counts = self.counts
        if outcome.error is not None:
            if isinstance(outcome.error, LaunchInDoubtError):
                counts.in_doubt += 1
                self.problems.doubt(key)
            else:
                counts.launch_failed += 1
                self.problems.error(key, "launch", outcome.error)
            return None
        if outcome.resumed:
            counts.resumed += 1
        else:
            counts.launched += 1
        self._changed()
        return outcome.execution

    async def _follow(self, outcome: LaunchOutcome, execution: WorkflowExecution) -> None:
        try:
            await self._wait_and_download(outcome, execution)
        finally:
            self._followers.release()

    async def _wait_and_download(
        self, outcome: LaunchOutcome, execution: WorkflowExecution
    ) -> None:
        key = outcome.request.key
        assert key is not None
        entry = await self._journal.get(key) if outcome.resumed else None
        status = None if entry is None else entry.status
        resumed_status = status is not None
        if status is None:
            self.counts.running += 1
            self._changed()
            try:
                final = await self._tl.workflows.wait_for_completion(
                    execution.id, timeout=self._timeout
                )
            except Exception as exc:
                self.counts.errors += 1
                self.problems.error(key, "wait", exc)
                self._done()
                return
            finally:
                self.counts.running -= 1
            status = final.status
            await self._journal.record_status(key, status)
        self.counts.finished += 1
        if is_failure(status):
            self.counts.failed += 1
        completed = str(status) == WorkflowStatus.COMPLETED
        self.counts.completed += completed
        if self._results is None or not completed:
            self._done(before=resumed_status)
            return
        recorded = None if entry is None else entry.result
        if recorded is not None and await anyio.Path(recorded).exists():
            self.counts.downloaded += 1
            self._done(before=resumed_status)
            return
        await self._download(key, execution.id)

    async def _download(self, key: str, execution_id: str) -> None:
        assert self._results is not None
        destination = self._results / result_name(key)
        # Saved atomically (temporary file, then rename): a file there is a whole result,
        # saved by a run killed before it could record it.
        if not await anyio.Path(destination).exists():
            async with self._downloads:
                try:
                    await self._tl.workflows.download_result(execution_id, destination)
                except Exception as exc:
                    self.counts.errors += 1
                    self.problems.error(key, "download", exc)
                    self._done()
                    return
        await self._journal.record_result(key, str(destination))
        self.counts.downloaded += 1
        self._done()


def _exit_code(counts: BatchCounts) -> int:
    if counts.in_doubt or counts.launch_failed or counts.errors:
        return 3
    return 1 if counts.failed else 0


def _summary_text(counts: BatchCounts, problems: _Problems, seconds: float) -> str:
    lines = [
        f"{counts.total} in the batch: {counts.launched} launched now, "
        f"{counts.resumed} launched by an earlier run",
    ]
    if counts.finished or counts.running:
        lines.append(
            f"{counts.finished} finished ({counts.completed} completed, {counts.failed} "
            f"failed or cancelled), {counts.downloaded} results saved"
        )
    if counts.launch_failed or counts.errors:
        lines.append(f"{counts.launch_failed + counts.errors} errors:")
        lines += [f"  {e['key']} ({e['stage']}): {e['error']['message']}" for e in problems.errors]
    if counts.in_doubt:
        lines.append(
            f"{counts.in_doubt} in doubt (may have been launched; check, then "
            "journal.resolve(key, execution_id or None)):"
        )
        lines += [f"  {key}" for key in problems.in_doubt]
    lines.append(f"took {seconds:.1f}s")
    return "\n".join(lines)


async def batch(tl: TransactionLink, args: argparse.Namespace, out: Output) -> int:
    """Run a batch file through a journal; exit 0 when everything went through, 1 when a
    workflow ended in failure, 3 when a launch, wait or download failed or is in doubt."""
    path: Path = args.file
    results: Path | None = args.results
    if not await anyio.Path(path).is_file():
        raise UsageError(f"{path}: no such file")
    folder = None if results is None else anyio.Path(results)
    if folder is not None and await folder.exists() and not await folder.is_dir():
        raise UsageError(f"--results {results} is not a folder")
    try:
        total = await run_blocking(check_file, path)
    except BatchFileError as exc:
        raise UsageError(f"{exc}; nothing was launched") from None
    if results is not None:
        await anyio.Path(results).mkdir(parents=True, exist_ok=True)
    counts = BatchCounts(total=total)
    progress = BatchProgress(out.stderr)
    async with SqliteJournal(args.journal) as journal:
        run = _Run(
            tl,
            journal,
            counts,
            wait=args.wait or results is not None,
            results=results,
            timeout=args.timeout,
            progress=progress,
        )
        try:
            await run.launch_all(path, args.concurrency)
        finally:
            progress.finish(counts)
    seconds = progress.elapsed
    data = {
        "file": str(path),
        "journal": str(args.journal),
        **counts.as_json(),
        "in_doubt_keys": run.problems.in_doubt,
        "errors": run.problems.errors,
        "seconds": round(seconds, 3),
    }
    out.result(data, _summary_text(counts, run.problems, seconds))
    return _exit_code(counts)
