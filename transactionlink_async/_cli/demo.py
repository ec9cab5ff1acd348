"""`transactionlink demo`: the whole flow a user runs, against the embedded fake server."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
from aiohttp import web

from .. import ApiKey, LaunchRequest, PollPolicy, TransactionLink, WorkflowExecution
from .._webhooks.receive import aiohttp_handler
from ..testing import FakeTransactionLink
from .output import Output, public_link, table
from .progress import Progress, format_bytes

__all__ = ["add_demo_arguments", "demo"]

MIB = 1024 * 1024
# Short enough that the client renews its token several times while the demo runs.
TOKEN_LIFETIME = 2.0
# Background workflows are checked often; webhooks usually bring the news first anyway.
BACKGROUND_POLL = PollPolicy(initial=0.25, multiplier=1.5, maximum=2.0)
# A person-facing workflow is checked rarely: its webhook ends the wait.
PERSON_POLL = PollPolicy(initial=30.0, maximum=60.0)
# When the simulated person finishes the hosted workflow page.
PERSON_THINKS = 1.2
WEBHOOK_PATH = "/webhooks/transactionlink"

# (definition, statuses, seconds per status) of the v3 workflows, in launch order.
REPORT = ("company-report", ("RUNNING", "COMPLETED"), 0.3)
PERSON = ("identity-check", ("RUNNING",), None)  # moves only when the "person" acts
FAILING = ("sanctions-screening", ("RUNNING", "FAILED"), 0.5)
OTHERS = (
    ("aml-screening", ("RUNNING", "COMPLETED"), 0.3),
    ("document-check", ("RUNNING", "AWAITING", "COMPLETED"), 0.25),
)
V1 = ("kyc-v1", ("RUNNING", "COMPLETED"), 0.4)


def _at_least(minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected at least {minimum}, got {value}")
        return value

    return parse


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workflows",
        type=_at_least(3),
        default=5,
        metavar="N",
        help="v3 workflows to launch at once (default 5, at least 3)",
    )
    parser.add_argument(
        "--result-mb",
        type=_at_least(1),
        default=100,
        metavar="N",
        help="size of the large result to download, in MiB (default 100)",
    )


@attrs.define
class Row:
    """One execution of the demo, for the summary."""

    execution_id: str
    definition: str
    kind: str
    launched: float
    status: str = ""
    finished: float | None = None
    result_bytes: int | None = None
    link: str | None = None


def _plan(count: int) -> list[tuple[str, tuple[str, ...], float | None]]:
    """The definitions of `count` v3 launches: one of each kind, then the others in turn."""
    plan = [REPORT, PERSON, FAILING]
    plan += [OTHERS[i % len(OTHERS)] for i in range(count - len(plan))]
    return plan


@asynccontextmanager
async def _webhook_receiver(tl: TransactionLink) -> AsyncIterator[str]:
    """A small aiohttp.web app on loopback receiving webhooks with the SDK's handler."""
    app = web.Application()
    app.router.add_post(WEBHOOK_PATH, aiohttp_handler(tl))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    finally:
        await runner.cleanup()


async def demo(args: argparse.Namespace, out: Output) -> int:
    """Authenticate, create a case, run and launch workflows, wait, download, summarise."""
    started = time.monotonic()

    def clock() -> float:
        return time.monotonic() - started

    def step(title: str, text: str) -> None:
        out.say(f"{clock():5.1f}s  {title:<10} {text}")

    # 1 MiB instead of the real 9 MB: even a small --result-mb goes through the link.
    async with FakeTransactionLink(
        access_token_lifetime=TOKEN_LIFETIME, inline_result_limit=MIB
    ) as fake:
        for definition, statuses, seconds in (V1, *_plan(args.workflows)):
            fake.define_workflow(
                definition,
                statuses=statuses,
                seconds_per_status=seconds,
                interactive=definition == PERSON[0],
            )
        fake.webhooks.retry_interval = 0.2
        out.say(f"TransactionLink demo against a fake API at {fake.base_url}")
        out.say("(nothing leaves this machine; the same calls work against the real API)\n")
        credentials = ApiKey(fake.api_key, fake.api_secret)
        async with (
            TransactionLink(credentials, base_url=fake.base_url) as tl,
            _webhook_receiver(tl) as receiver,
        ):
            fake.webhooks.subscribe(receiver)
            step("webhooks", f"receiver on {receiver} (subscribed)")
            rows = await _launch(tl, fake, args.workflows, clock, step)
            await _wait(tl, fake, rows, clock, step)
            download = await _download(tl, fake, rows[1], args.result_mb, out, step)
            await _small_results(tl, rows)
            tokens = {
                "authorize": fake.count("POST", "/auth/authorize"),
                "refresh": fake.count("POST", "/auth/refresh"),
                "refused_401": sum(1 for entry in fake.journal if entry.status == 401),
            }
            step(
                "token",
                f"access tokens live {TOKEN_LIFETIME:.0f}s: authorized {tokens['authorize']}x, "
                f"renewed early {tokens['refresh']}x, {tokens['refused_401']} calls refused",
            )
        stats = {
            "requests": len(fake.journal),
            "webhooks_delivered": sum(1 for d in fake.webhooks.deliveries if d.delivered),
            "tokens": tokens,
            "download": download,
        }
    _summary(rows, stats, out=out, clock=clock)
    return 0


async def _launch(
    tl: TransactionLink, fake: FakeTransactionLink, count: int, clock: Any, step: Any
) -> list[Row]:
    """A case and a v1 run, then `count` v3 workflows launched at once."""
    case = await tl.cases.create(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    step("auth", "authorized with the API key and secret (POST /auth/authorize)")
    step("case", f"created case {case.case_id}")
    v1 = await tl.workflows.run(workflow_definition_id=V1[0], case_id=case.case_id)
    step("v1 run", f"{V1[0]} for the case: {v1.id} {v1.status}")
    rows = [Row(v1.id, V1[0], "v1", clock())]

    plan = _plan(count)
    requests = [
        LaunchRequest(
            workflow_definition_id=definition, locale="en", parameters={"customer": f"c-{i}"}
        )
        for i, (definition, _, _) in enumerate(plan)
    ]
    launched: list[Row | None] = [None] * len(requests)
    begun = clock()
    async for outcome in tl.workflows.launch_many(requests, concurrency=4):
        if outcome.execution is None:
            raise outcome.error or RuntimeError("launch failed without an error")
        execution = outcome.execution
        launched[outcome.index] = Row(
            execution.id, plan[outcome.index][0], "v3", clock(), link=execution.link
        )
    step(
        "launch",
        f"{len(requests)} v3 workflows with launch_many (4 in flight) in {clock() - begun:.2f}s",
    )
    rows += [row for row in launched if row is not None]
    person = rows[2]
    step("person", f"{person.definition} is interactive: {public_link(person.link)} goes to them")
    # The large result lives in the fake S3; /result answers with a pre-signed link to it.
    return rows


async def _wait(
    tl: TransactionLink, fake: FakeTransactionLink, rows: list[Row], clock: Any, step: Any
) -> None:
    """wait_many over the background runs, one rarely polled wait ended by its webhook."""
    person = rows[2]
    background = [row for row in rows if row is not person]
    by_id = {row.execution_id: row for row in rows}

    def finished(execution: WorkflowExecution, how: str) -> None:
        row = by_id[execution.id]
        row.status, row.finished = str(execution.status), clock()
        waited = row.finished - row.launched
        step("done", f"{row.definition:<20} {row.status:<10} after {waited:.1f}s {how}".rstrip())

    async def the_person() -> None:
        await anyio.sleep(PERSON_THINKS)
        step("person", f"finishes the {person.definition} page: AWAITING, then COMPLETED")
        fake.set_status(person.execution_id, "AWAITING")
        await anyio.sleep(0.2)
        fake.set_status(person.execution_id, "COMPLETED")

    async def wait_for_person() -> None:
        execution = await tl.workflows.wait_for_completion(
            person.execution_id, poll=PERSON_POLL, timeout=30
        )
        finished(execution, f"(polled every {PERSON_POLL.initial:.0f}s: ended by its webhook)")

    step("wait", f"wait_many over {len(background)} runs; 1 person-facing run in parallel")
    async with anyio.create_task_group() as tg:
        tg.start_soon(the_person)
        tg.start_soon(wait_for_person)
        async with tl.workflows.wait_many(
            [row.execution_id for row in background], poll=BACKGROUND_POLL, timeout=30
        ) as batch:
            async for execution in batch:
                finished(execution, "")


async def _download(
    tl: TransactionLink,
    fake: FakeTransactionLink,
    row: Row,
    size_mib: int,
    out: Output,
    step: Any,
) -> dict[str, Any]:
    """The large result, through its pre-signed link, to a temporary file."""
    fake.set_large_result(row.execution_id, size=size_mib * MIB)
    step("result", f"{row.definition}: {size_mib} MiB stored behind a pre-signed link")
    with tempfile.TemporaryDirectory(prefix="transactionlink-demo-") as folder:
        destination = Path(folder) / "report.json"
        progress = Progress(out.stderr if out.as_json else out.stdout, label="         ")
        try:
            saved = await tl.workflows.download_result(
                row.execution_id, destination, on_progress=progress
            )
        finally:
            progress.finish()
        seconds = progress.elapsed
        row.result_bytes = saved.size
    rate = saved.size / seconds if seconds > 0 else 0.0
    checked = "MD5 matches the ETag" if saved.md5_verified else "size checked"
    step(
        "saved",
        f"{format_bytes(saved.size)} in {seconds:.1f}s ({format_bytes(rate)}/s); {checked}; "
        "written atomically",
    )
    return {"bytes": saved.size, "seconds": round(seconds, 3), "md5_verified": saved.md5_verified}


async def _small_results(tl: TransactionLink, rows: list[Row]) -> None:
    for row in rows:
        if row.result_bytes is None and row.status == "COMPLETED":
            result = await tl.workflows.get_result(row.execution_id)
            row.result_bytes = len(str(result).encode())


def _summary(rows: list[Row], stats: dict[str, Any], *, out: Output, clock: Any) -> None:
    headers = ["execution", "workflow", "api", "status", "seconds", "result"]
    table_rows = [
        [
            row.execution_id[:8],
            row.definition,
            row.kind,
            row.status,
            round(row.finished - row.launched, 1) if row.finished is not None else None,
            format_bytes(row.result_bytes) if row.result_bytes is not None else "-",
        ]
        for row in rows
    ]
    total = clock()
    footer = (
        f"{len(rows)} executions, {stats['requests']} API requests, "
        f"{stats['webhooks_delivered']} webhooks delivered, done in {total:.1f}s"
    )
    data = {
        "executions": [
            {
                "id": row.execution_id,
                "workflow": row.definition,
                "api": row.kind,
                "status": row.status,
                "seconds": None if row.finished is None else round(row.finished - row.launched, 3),
                "result_bytes": row.result_bytes,
            }
            for row in rows
        ],
        **stats,
        "seconds": round(total, 3),
    }
    out.result(data, f"\n{table(headers, table_rows)}\n\n{footer}")
