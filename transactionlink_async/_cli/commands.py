"""The commands that talk to an API: run, status, wait, result, cancel.

Each returns the process exit code for what the workflow did (0, or 1 when it ended in a
failure status); errors are raised and turned into exit codes by `main`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from .. import PollPolicy, TransactionLink
from ..errors import NotFoundError, ResultTooLargeError, WaitTimeoutError
from ..models import WorkflowExecution
from .output import Output, execution_json, execution_text, is_failure, public_link
from .progress import Progress, format_bytes

__all__ = [
    "PRINT_LIMIT",
    "UsageError",
    "cancel",
    "parse_param",
    "result",
    "run",
    "status",
    "wait",
]

#: Results up to this size are printed when no `-o FILE` is given.
PRINT_LIMIT = 1024 * 1024


class UsageError(ValueError):
    """The command was called in a way that cannot work; exit code 2."""


def parse_param(text: str) -> tuple[str, Any]:
    """`key=text` gives a string, `key:=json` any JSON value (argparse `type=`)."""
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected key=value or key:=json, got {text!r}")
    if key.endswith(":"):
        key = key[:-1]
        try:
            parsed: Any = json.loads(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"the value of {key}:= must be JSON (quote strings), got {value!r}"
            ) from None
    else:
        parsed = value
    if not key:
        raise argparse.ArgumentTypeError(f"the parameter name is empty in {text!r}")
    return key, parsed


def _parameters(pairs: list[tuple[str, Any]] | None) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for key, value in pairs or ():
        if key in parameters:
            raise UsageError(f"--param {key} is given twice")
        parameters[key] = value
    return parameters


def _poll(args: argparse.Namespace) -> PollPolicy | None:
    interval: float | None = args.poll_interval
    if interval is None:
        return None
    return PollPolicy(initial=interval, maximum=max(interval, PollPolicy().maximum))


def _outcome(execution: WorkflowExecution) -> int:
    return 1 if is_failure(execution.status) else 0


def _check_destination(path: Path | None) -> None:
    # Found before the workflow is launched, not after it ran for an hour.
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"-o {path} is a folder: give the path of a file to write")
    if not path.parent.is_dir():
        raise UsageError(f"-o {path}: the folder {path.parent} does not exist")


async def _fetch_result(
    tl: TransactionLink, execution: WorkflowExecution, destination: Path | None, out: Output
) -> dict[str, Any] | None:
    """Save the result to `destination`, or return it for printing; None when there is none."""
    try:
        if destination is None:
            try:
                data = await tl.workflows.get_result(execution.id, max_bytes=PRINT_LIMIT)
            except ResultTooLargeError as exc:
                size = f"{format_bytes(exc.size)}" if exc.size else "large"
                raise UsageError(
                    f"the result of {execution.id} is {size}, too much to print: "
                    "save it with -o FILE"
                ) from None
            return {"result": data}
        progress = Progress(out.stderr, label="result")
        try:
            saved = await tl.workflows.download_result(
                execution.id, destination, on_progress=progress
            )
        finally:
            progress.finish()
        return {"path": str(saved.path), "size": saved.size, "seconds": progress.elapsed}
    except NotFoundError:
        if is_failure(execution.status):
            return None  # a failed or cancelled run often leaves nothing
        raise


def _result_text(execution: WorkflowExecution, fetched: dict[str, Any] | None) -> str:
    if fetched is None:
        return f"{execution.id} ended {execution.status} with no result"
    if "result" in fetched:
        return json.dumps(fetched["result"], indent=2)
    rate = fetched["size"] / fetched["seconds"] if fetched["seconds"] > 0 else 0.0
    return (
        f"saved the result of {execution.id} ({format_bytes(fetched['size'])}) to "
        f"{fetched['path']} in {fetched['seconds']:.1f}s ({format_bytes(rate)}/s)"
    )


async def status(tl: TransactionLink, args: argparse.Namespace, out: Output) -> int:
    """Show an execution as it is now; exit 1 when it ended in a failure status."""
    execution = await tl.workflows.get(args.execution_id)
    out.result(execution_json(execution), execution_text(execution))
    return _outcome(execution)


async def wait(tl: TransactionLink, args: argparse.Namespace, out: Output) -> int:
    """Wait until an execution is final; exit 1 when it failed or the timeout ran out."""
    started = time.monotonic()
    try:
        execution = await tl.workflows.wait_for_completion(
            args.execution_id, timeout=args.timeout, poll=_poll(args)
        )
    except WaitTimeoutError as exc:
        return _timed_out(exc, args.execution_id, out)
    elapsed = time.monotonic() - started
    data = {**execution_json(execution), "seconds": round(elapsed, 3)}
    out.result(data, f"{execution.id}: {execution.status} after {elapsed:.1f}s")
    return _outcome(execution)


def _timed_out(exc: WaitTimeoutError, execution_id: str, out: Output) -> int:
    last = exc.last if isinstance(exc.last, WorkflowExecution) else None
    seen = str(last.status) if last is not None else "unknown"
    data = {**(execution_json(last) if last else {"id": execution_id}), "timed_out": True}
    out.stderr.write(f"error: {exc} (last status {seen})\n")
    out.result(data, f"{execution_id}: still {seen}, not final when the timeout ran out")
    return 1


async def result(tl: TransactionLink, args: argparse.Namespace, out: Output) -> int:
    """Save or print an execution's result; exit 1 when the execution ended in failure."""
    destination: Path | None = args.output
    _check_destination(destination)
    execution = await tl.workflows.get(args.execution_id)
    if not execution.is_final:
        out.result(
            {**execution_json(execution), "result_ready": False},
            f"{execution.id} is {execution.status}: no result yet "
            f"(transactionlink wait {execution.id} waits for it)",
        )
        return 1
    fetched = await _fetch_result(tl, execution, destination, out)
    out.result({**execution_json(execution), **(fetched or {})}, _result_text(execution, fetched))
    return _outcome(execution)


async def cancel(tl: TransactionLink, args: argparse.Namespace, out: Output) -> int:
    """Cancel an execution; exit 1 when it had already ended some other way."""
    await tl.workflows.cancel(args.execution_id)
    execution = await tl.workflows.get(args.execution_id)
    took = not execution.is_final or str(execution.status) == "CANCELLED"
    text = (
        f"{execution.id}: {execution.status}"
        if took
        else f"{execution.id} had already ended {execution.status}; nothing was cancelled"
    )
    out.result({**execution_json(execution), "cancelled": took}, text)
    return 0 if took else 1


async def run(tl: TransactionLink, args: argparse.Namespace, out: Output) -> int:
    """Initialise a workflow, wait for it, then save or print its result."""
    destination: Path | None = args.output
    _check_destination(destination)
    parameters = _parameters(args.param)
    started = time.monotonic()
    execution = await tl.workflows.initialise(
        workflow_definition_id=args.definition, locale=args.locale, parameters=parameters
    )
    out.say(f"initialised {execution.id} ({args.definition}): {execution.status}")
    if execution.link:
        out.say(f"link for the person: {public_link(execution.link)}")
    remaining = None if args.timeout is None else max(0.0, args.timeout - _since(started))
    try:
        execution = await tl.workflows.wait_for_completion(
            execution.id, timeout=remaining, poll=_poll(args)
        )
    except WaitTimeoutError as exc:
        return _timed_out(exc, execution.id, out)
    out.say(f"{execution.id}: {execution.status} after {_since(started):.1f}s")
    fetched = await _fetch_result(tl, execution, destination, out)
    data = {**execution_json(execution), "seconds": round(_since(started), 3), **(fetched or {})}
    out.result(data, _result_text(execution, fetched))
    return _outcome(execution)


def _since(started: float) -> float:
    return time.monotonic() - started
