"""Seeded fault injection: launches, waits and downloads against a fake that misbehaves.

Each scenario draws, from `random.Random(seed)`, a client (organization token, or an API
key whose access tokens live under a second and whose refresh tokens rotate), a batch of
launches, waits and downloads, and a mix of faults: 429/5xx answers with and without
Retry-After, connections dropped before and after the request was read, truncated
bodies, slow answers, cut and failing S3 reads, expired pre-signed links, objects replaced
mid-download, and access tokens expired mid-batch. After each scenario the invariants
below must hold; the totals are printed at the end of the run.

Rerun one scenario with `pytest tests/reliability -k "seed_123"`; RELIABILITY_SCENARIOS
and RELIABILITY_FIRST_SEED change how many and which.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import os
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import anyio
import pytest

from transactionlink_async import (
    ApiKey,
    Credentials,
    DownloadedResult,
    LaunchRequest,
    OrganizationToken,
    PollPolicy,
    ResultDownloadError,
    RetryPolicy,
    Timeouts,
    TransactionLink,
    TransactionLinkError,
    TransportError,
    WaitTimeoutError,
)
from transactionlink_async.testing import FakeTransactionLink, GeneratedJson

from .reliability_totals import Totals

pytestmark = pytest.mark.anyio

SCENARIOS = int(os.environ.get("RELIABILITY_SCENARIOS", "200"))
FIRST_SEED = int(os.environ.get("RELIABILITY_FIRST_SEED", "1"))

FAST_RETRY = RetryPolicy(backoff_base=0.001, backoff_cap=0.005, max_retry_after=1.0)
FAST_POLL = PollPolicy(initial=0.005, multiplier=1.5, maximum=0.02, jitter=0.2)
TIMEOUTS = Timeouts(connect=1.0, read=0.5, total=1.0)
# A wait may end this much after its timeout (scheduling on a loaded 2-core machine).
WAIT_SLACK = 0.5

# Where API faults may land: (method, path glob).
API_ROUTES = [
    ("POST", "/workflows"),
    ("GET", "/workflows/*"),
    ("GET", "/workflows/*/result"),
    ("POST", "/auth/authorize"),
    ("POST", "/auth/refresh"),
]
DEFINITIONS = ["quick", "slow", "failing", "timed", "interactive", "stuck"]


@dataclass
class Download:
    execution_id: str
    folder: Path
    # MD5 and size of every version of the result that existed (a fault may replace it).
    versions: list[tuple[str, int]]
    result: DownloadedResult | None = None
    error: BaseException | None = None


@dataclass
class Wait:
    execution_id: str
    timeout: float
    elapsed: float = 0.0
    status: str | None = None
    error: BaseException | None = None


@dataclass
class Scenario:
    """One seeded run: what was asked, what happened, and the faults it met."""

    seed: int
    rng: random.Random
    requests: list[LaunchRequest] = field(default_factory=list)
    outcomes: dict[int, Any] = field(default_factory=dict)
    waits: list[Wait] = field(default_factory=list)
    downloads: list[Download] = field(default_factory=list)
    s3_rules: list[tuple[str, Any]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            self.violations.append(f"seed {self.seed}: {message}")


def _seeds() -> Iterator[Any]:
    for seed in range(FIRST_SEED, FIRST_SEED + SCENARIOS):
        yield pytest.param(seed, id=f"seed_{seed}")


# -- setting a scenario up -----------------------------------------------------------------


def _define_workflows(fake: FakeTransactionLink, rng: random.Random) -> None:
    fake.define_workflow("quick", statuses=("RUNNING", "COMPLETED"))
    fake.define_workflow("slow", statuses=("RUNNING", "AWAITING", "COMPLETED"), polls_per_status=2)
    fake.define_workflow("failing", statuses=("RUNNING", "FAILED"))
    fake.define_workflow(
        "timed", statuses=("COMPLETED",), seconds_per_status=rng.uniform(0.01, 0.1)
    )
    fake.define_workflow("interactive", statuses=("COMPLETED",), interactive=True)
    fake.define_workflow("stuck", statuses=("RUNNING",))


def _add_downloads(scenario: Scenario, fake: FakeTransactionLink, tmp_path: Path) -> None:
    rng = scenario.rng
    for number in range(rng.choice([0, 1, 1, 2])):
        folder = tmp_path / f"download-{number}"
        folder.mkdir()
        if rng.random() < 0.2:
            document = {"decision": "APPROVED", "n": number, "note": "x" * rng.randrange(200)}
            execution_id = fake.create_execution(document)
            body = json.dumps(document).encode()
            versions = [(hashlib.md5(body, usedforsecurity=False).hexdigest(), len(body))]
        else:
            execution_id = fake.create_execution()
            size = rng.randrange(20_000, 300_000)
            seed = rng.randrange(1000)
            key = fake.set_large_result(execution_id, size=size, seed=seed)
            versions = [(GeneratedJson(size, seed).md5_hex(), size)]
            _add_s3_faults(scenario, fake, key, size, versions)
        scenario.downloads.append(Download(execution_id, folder, versions))


def _add_s3_faults(
    scenario: Scenario,
    fake: FakeTransactionLink,
    key: str,
    size: int,
    versions: list[tuple[str, int]],
) -> None:
    rng = scenario.rng
    s3 = fake.s3
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        kind = rng.choice(["cut", "cut", "status", "drop", "expired", "cut_expire", "replace"])
        if kind == "cut":
            rule = s3.inject(key_glob=key, cut_after=rng.randrange(1, size))
        elif kind == "status":
            rule = s3.inject(key_glob=key, status=rng.choice([500, 503]))
        elif kind == "drop":
            rule = s3.inject(key_glob=key, drop=True)
        elif kind == "expired":
            rule = s3.inject(
                key_glob=key, status=403, code="AccessDenied", message="Request has expired"
            )
        elif kind == "cut_expire":
            rule = s3.inject(key_glob=key, cut_after=rng.randrange(1, size), then=s3.expire_urls)
        else:
            new_size = rng.randrange(20_000, 300_000)
            new_seed = rng.randrange(1000, 2000)
            versions.append((GeneratedJson(new_size, new_seed).md5_hex(), new_size))

            def replace(size: int = new_size, seed: int = new_seed) -> None:
                s3.put_generated(key, size, seed=seed, encode_slash=True)

            rule = s3.inject(key_glob=key, cut_after=rng.randrange(1, size), then=replace)
        scenario.s3_rules.append((f"s3_{kind}", rule))


def _add_api_faults(scenario: Scenario, fake: FakeTransactionLink) -> None:
    rng = scenario.rng
    for _ in range(rng.randrange(1, 7)):
        method, path = rng.choice(API_ROUTES)
        kind = rng.choice(["status", "status", "status", "drop", "delay", "truncate"])
        times = rng.choice([1, 1, 2])
        if kind == "status":
            retry_after = rng.choice([None, None, 0, "0", 0.01, 0.02])
            fake.inject(
                method,
                path,
                status=rng.choice([429, 500, 502, 503, 504]),
                retry_after=retry_after,
                times=times,
            )
        elif kind == "drop":
            drop = rng.choice(["before_body", "after_body"])
            fake.inject(method, path, drop=drop, times=times)  # type: ignore[arg-type]
        elif kind == "delay":
            fake.inject(method, path, delay=rng.uniform(0.005, 0.05), times=times)
        else:
            fake.inject(method, path, truncate_at=rng.randrange(0, 40), times=times)


def _credentials(fake: FakeTransactionLink, rng: random.Random) -> Credentials:
    if rng.random() < 0.3:
        return OrganizationToken(fake.org_token)
    return ApiKey(fake.api_key, fake.api_secret)


# -- running it ----------------------------------------------------------------------------


async def _launch_and_wait(scenario: Scenario, tl: TransactionLink) -> None:
    rng = scenario.rng
    for index in range(rng.randrange(1, 6)):
        scenario.requests.append(
            LaunchRequest(
                workflow_definition_id=rng.choice(DEFINITIONS),
                locale="en",
                # A tag per request: the server's executions tell which request made them.
                parameters={"tag": f"{scenario.seed}-{index}"},
            )
        )
    async with anyio.create_task_group() as waits:
        batch = tl.workflows.launch_many(scenario.requests, concurrency=rng.randrange(1, 4))
        async with batch:
            async for outcome in batch:
                scenario.outcomes[outcome.index] = outcome
                if outcome.execution is not None:
                    wait = Wait(outcome.execution.id, timeout=rng.uniform(0.15, 0.5))
                    scenario.waits.append(wait)
                    waits.start_soon(_wait, tl, wait)


async def _wait(tl: TransactionLink, wait: Wait) -> None:
    began = time.monotonic()
    try:
        execution = await tl.workflows.wait_for_completion(
            wait.execution_id, timeout=wait.timeout, poll=FAST_POLL
        )
        wait.status = str(execution.status)
    except TransactionLinkError as exc:
        wait.error = exc
    finally:
        wait.elapsed = time.monotonic() - began


async def _download(tl: TransactionLink, download: Download) -> None:
    try:
        download.result = await tl.workflows.download_result(
            download.execution_id, download.folder / "result.json"
        )
    except TransactionLinkError as exc:
        download.error = exc


async def _expire_tokens(fake: FakeTransactionLink, rng: random.Random) -> None:
    # Mid-batch: the access tokens in use are refused from a random moment on.
    for _ in range(rng.choice([0, 1, 1, 2])):
        await anyio.sleep(rng.uniform(0.0, 0.08))
        fake.expire_access_tokens()
        if rng.random() < 0.3:
            fake.revoke_refresh_tokens()


async def _run(scenario: Scenario, fake: FakeTransactionLink) -> None:
    credentials = _credentials(fake, scenario.rng)
    async with (
        TransactionLink(
            credentials, base_url=fake.base_url, retry=FAST_RETRY, timeouts=TIMEOUTS
        ) as tl,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(_launch_and_wait, scenario, tl)
        for download in scenario.downloads:
            tg.start_soon(_download, tl, download)
        tg.start_soon(_expire_tokens, fake, scenario.rng)


# -- the invariants ------------------------------------------------------------------------


def _check_launches(scenario: Scenario, fake: FakeTransactionLink, totals: Totals) -> None:
    requests = scenario.requests
    scenario.check(
        sorted(scenario.outcomes) == list(range(len(requests))),
        f"outcomes for {sorted(scenario.outcomes)} of {len(requests)} launches",
    )
    by_tag = Counter(
        str((doc.get("parameters") or {}).get("tag")) for doc in fake.executions.values()
    )
    # Every execution on the server was created by exactly one POST /workflows that reached
    # the handler: the journal and the executions must agree.
    handled = [
        e for e in fake.requests("POST", "/workflows") if e.status is not None and not e.faults
    ]
    tagged = sum(n for tag, n in by_tag.items() if tag.startswith(f"{scenario.seed}-"))
    truncated_or_slow = [
        e for e in fake.requests("POST", "/workflows") if set(e.faults) & {"truncate", "delay"}
    ]
    scenario.check(
        tagged <= len(handled) + len(truncated_or_slow),
        f"{tagged} executions but {len(handled)} launches reached the handler",
    )
    for index, request in enumerate(requests):
        tag = request.parameters["tag"] if request.parameters else None
        created = by_tag.get(str(tag), 0)
        scenario.check(created <= 1, f"launch {index} created {created} executions")
        totals.launched_twice += created > 1
        outcome = scenario.outcomes.get(index)
        if outcome is None:
            continue
        totals.launches += 1
        if outcome.error is None:
            scenario.check(created == 1, f"launch {index} succeeded, server has {created}")
            scenario.check(
                outcome.execution.id in fake.executions, f"launch {index}: unknown id returned"
            )
            continue
        totals.launches_failed += 1
        scenario.errors.append(outcome.error)
        scenario.check(
            isinstance(outcome.error, TransactionLinkError),
            f"launch {index} failed with {type(outcome.error).__name__}",
        )
        if created:
            totals.launched_despite_error += 1
            # It reached the server: the error must say so, never hide a launch.
            scenario.check(
                isinstance(outcome.error, TransportError) and outcome.error.request_sent,
                f"launch {index} was created but failed with {outcome.error!r}",
            )


def _check_waits(scenario: Scenario, fake: FakeTransactionLink, totals: Totals) -> None:
    for wait in scenario.waits:
        scenario.check(
            wait.elapsed <= wait.timeout + WAIT_SLACK,
            f"wait took {wait.elapsed:.3f}s with timeout {wait.timeout:.3f}s",
        )
        if wait.error is None:
            server_status = fake.executions[wait.execution_id]["status"]
            scenario.check(
                wait.status == server_status
                and server_status in ("COMPLETED", "FAILED", "CANCELLED"),
                f"wait ended on {wait.status}, server says {server_status}",
            )
            totals.waits[f"final {wait.status}"] += 1
        elif isinstance(wait.error, WaitTimeoutError):
            totals.waits["timed out"] += 1
            scenario.errors.append(wait.error)
        else:
            totals.waits[f"error {type(wait.error).__name__}"] += 1
            scenario.errors.append(wait.error)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _check_downloads(scenario: Scenario, totals: Totals) -> None:
    for download in scenario.downloads:
        totals.downloads += 1
        destination = download.folder / "result.json"
        left = sorted(p.name for p in download.folder.iterdir())
        if download.result is not None:
            scenario.check(left == ["result.json"], f"download left {left}")
            if destination.exists():
                digest, size = _md5(destination), destination.stat().st_size
                scenario.check(
                    (digest, size) in download.versions,
                    f"downloaded {size} bytes matching no version of the result",
                )
                scenario.check(
                    download.result.md5 in (None, digest), "DownloadedResult.md5 is wrong"
                )
                totals.bytes_verified += size
        else:
            totals.downloads_failed += 1
            error = download.error
            assert error is not None
            scenario.errors.append(error)
            scenario.check(left == [], f"a failed download left {left}")
            scenario.check(
                isinstance(error, (ResultDownloadError, TransactionLinkError)),
                f"download failed with {type(error).__name__}",
            )


def _secrets(fake: FakeTransactionLink) -> set[str]:
    found = {fake.org_token, fake.api_secret}
    for entry in fake.journal:
        authorization = entry.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            found.add(authorization.removeprefix("Bearer "))
        if entry.path == "/auth/refresh" and entry.body:
            try:
                token = json.loads(entry.body).get("refreshToken")
            except ValueError:
                token = None
            if isinstance(token, str):
                found.add(token)
    found.update(fake._tokens._live_refresh)
    for document in fake.executions.values():
        if document.get("token"):
            found.add(document["token"])
    for request in fake.s3.journal:
        for name in ("X-Amz-Signature", "X-Amz-Security-Token"):
            match = re.search(rf"{name}=([^&]+)", request.query)
            if match:
                found.add(match.group(1))
                found.add(unquote(match.group(1)))
    return {s for s in found if len(s) >= 12}


def _texts(error: BaseException) -> Iterator[str]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        current = current.__cause__ or current.__context__


def _check_secrets(
    scenario: Scenario,
    fake: FakeTransactionLink,
    records: list[logging.LogRecord],
    totals: Totals,
) -> None:
    secrets = _secrets(fake)
    texts = []
    for record in records:
        texts.append(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            texts.extend(_texts(record.exc_info[1]))
    totals.log_lines_checked += len(records)
    for error in scenario.errors:
        texts.extend(_texts(error))
    for text in texts:
        for secret in secrets:
            if secret in text:
                scenario.check(False, f"a secret ({secret[:4]}...) in {text[:80]!r}")


def _check_nothing_left(scenario: Scenario, tasks_before: set[asyncio.Task[Any]]) -> None:
    current = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not current and t not in tasks_before]
    scenario.check(not [t for t in left if not t.done()], f"tasks left running: {left}")
    gc.collect()
    sessions = [
        o for o in gc.get_objects() if isinstance(o, aiohttp.ClientSession) and not o.closed
    ]
    scenario.check(not sessions, f"{len(sessions)} aiohttp sessions left open")


# -- the test ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", list(_seeds()))
async def test_invariants_hold_under_faults(
    seed: int, tmp_path: Path, caplog: pytest.LogCaptureFixture, totals: Totals
) -> None:
    caplog.set_level(logging.DEBUG)
    scenario = Scenario(seed, random.Random(seed))
    tasks_before = set(asyncio.all_tasks())
    rng = scenario.rng
    lifetime = rng.choice([3600.0, 3600.0, 1.0, 0.4])
    async with FakeTransactionLink(access_token_lifetime=lifetime) as fake:
        _define_workflows(fake, rng)
        _add_downloads(scenario, fake, tmp_path)
        _add_api_faults(scenario, fake)
        with anyio.fail_after(20):
            await _run(scenario, fake)
        _check_launches(scenario, fake, totals)
        _check_waits(scenario, fake, totals)
        _check_downloads(scenario, totals)
        _check_secrets(scenario, fake, caplog.records, totals)
        totals.faults.update(fake.faults_fired)
        for kind, rule in scenario.s3_rules:
            if rule.fired:
                totals.faults[kind] += rule.fired
        totals.token_refreshes += fake.count("POST", "/auth/refresh")
    _check_nothing_left(scenario, tasks_before)
    totals.scenarios += 1
    totals.violations.extend(scenario.violations)
    assert not scenario.violations, "\n".join(scenario.violations)
