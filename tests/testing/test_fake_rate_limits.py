"""The fake's rate limits and answer delays: in process, and from another process."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from transactionlink_async.testing import FakeTransactionLink, RateLimitRule
from transactionlink_async.testing.__main__ import main as serve_main
from transactionlink_async.testing._limits import parse_delay, parse_rate_limit

pytestmark = pytest.mark.anyio

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCH = {"workflowDefinitionId": "kyc", "locale": "en", "parameters": {}}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def launch(http: aiohttp.ClientSession, base_url: str, token: str) -> tuple[int, str | None]:
    """POST /workflows once: (status, Retry-After)."""
    async with http.post(
        f"{base_url}/workflows", json=LAUNCH, headers={"Authorization": token}
    ) as response:
        await response.read()
        return response.status, response.headers.get("Retry-After")


# -- the bucket itself (pure, on a clock the test holds) -----------------------------------


def test_a_full_bucket_then_one_token_per_interval() -> None:
    rule = RateLimitRule("POST", "/workflows", per_second=4, burst=2)
    assert rule.admit(0.0) is None
    assert rule.admit(0.0) is None
    # Empty: a token is 0.25 s away, written as a whole second like real APIs do.
    assert rule.admit(0.0) == 1.0
    assert rule.admit(0.24) == 1.0
    assert rule.admit(0.25) is None
    assert (rule.admitted, rule.refused) == (3, 2)


def test_a_fixed_retry_after_and_a_slow_limit() -> None:
    assert RateLimitRule("*", "/**", per_second=10, retry_after=0.2).admit(0) is None
    fixed = RateLimitRule("*", "/**", per_second=10, retry_after=0.2)
    fixed.admit(0.0)
    assert fixed.admit(0.0) == 0.2
    slow = RateLimitRule("*", "/**", per_second=0.25)
    slow.admit(0.0)
    assert slow.admit(0.0) == 4.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"per_second": 0}, "per_second must be a finite number > 0"),
        ({"per_second": math.nan}, "per_second must be a finite number > 0"),
        ({"per_second": math.inf}, "per_second must be a finite number > 0"),
        ({"per_second": 1, "burst": 0.5}, "burst must be a finite number >= 1"),
        ({"per_second": 1, "retry_after": -1}, "retry_after must be a finite number >= 0"),
    ],
)
def test_bad_limits_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RateLimitRule("POST", "/workflows", **kwargs)


@given(
    per_second=st.floats(0.5, 1000),
    burst=st.floats(1, 50),
    gaps=st.lists(st.floats(0, 0.5), min_size=1, max_size=300),
)
def test_never_more_than_the_burst_plus_the_rate(
    per_second: float, burst: float, gaps: list[float]
) -> None:
    rule = RateLimitRule("*", "/**", per_second=per_second, burst=burst)
    now, admitted = 0.0, []
    for gap in gaps:
        now += gap
        if rule.admit(now) is None:
            admitted.append(now)
    # Over any stretch of time, at most burst + rate x its length got through.
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            assert j - i + 1 <= burst + per_second * (admitted[j] - start) + 1e-6


def test_specs_from_the_command_line() -> None:
    rule = parse_rate_limit("POST /workflows 100 burst=10 retry_after=1")
    assert (rule.method, rule.path_glob, rule.per_second, rule.burst, rule.retry_after) == (
        "POST",
        "/workflows",
        100.0,
        10.0,
        1.0,
    )
    delay = parse_delay("* /** 0.1")
    assert (delay.method, delay.path_glob, delay.seconds) == ("*", "/**", 0.1)
    for bad in ("POST /workflows", "POST /workflows 10 brust=2", "POST /workflows x"):
        with pytest.raises(ValueError):  # noqa: PT011 - each says what it expects
            parse_rate_limit(bad)
    with pytest.raises(ValueError, match="METHOD PATH_GLOB SECONDS"):
        parse_delay("* /**")


def test_serve_refuses_a_bad_spec(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        serve_main(["serve", "--rate-limit", "POST /workflows -1"])
    assert exited.value.code == 2
    assert "per_second must be a finite number > 0" in capsys.readouterr().err


# -- over sockets --------------------------------------------------------------------------


async def test_refused_requests_get_429_with_retry_after_and_create_nothing(
    fake: FakeTransactionLink, http: aiohttp.ClientSession
) -> None:
    rule = fake.set_rate_limit("POST", "/workflows", per_second=0.5, burst=2)
    answers = [await launch(http, fake.base_url, fake.org_token) for _ in range(4)]
    assert answers == [(200, None), (200, None), (429, "2"), (429, "2")]
    assert len(fake.executions) == 2
    assert (rule.admitted, rule.refused) == (2, 2)
    # Other routes are not limited, and the refusals are counted apart.
    execution_id = next(iter(fake.executions))
    async with http.get(
        f"{fake.base_url}/workflows/{execution_id}", headers={"Authorization": fake.org_token}
    ) as response:
        assert response.status == 200
    stats = fake.stats()
    assert stats["answers"]["POST /workflows"] == {"200": 2, "429": 2}
    assert [e.faults for e in fake.requests("POST", "/workflows")][2:] == [("rate_limit",)] * 2
    refused = fake.requests("POST", "/workflows")[2]
    assert refused.status == 429


async def test_a_limit_refills_at_its_rate_and_can_be_replaced_or_cleared(
    fake: FakeTransactionLink, http: aiohttp.ClientSession
) -> None:
    fake.set_rate_limit("POST", "/workflows", per_second=20, retry_after=0.05)
    assert (await launch(http, fake.base_url, fake.org_token))[0] == 200
    assert await launch(http, fake.base_url, fake.org_token) == (429, "0.05")
    for _ in range(200):  # a token every 50 ms
        if (await launch(http, fake.base_url, fake.org_token))[0] == 200:
            break
        await anyio.sleep(0.01)
    else:
        pytest.fail("the limit never refilled")
    fake.set_rate_limit("POST", "/workflows", per_second=0.1, burst=3)  # a full bucket again
    statuses = [(await launch(http, fake.base_url, fake.org_token))[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    fake.clear_rate_limits()
    assert (await launch(http, fake.base_url, fake.org_token))[0] == 200


async def test_an_answer_delay_holds_every_matching_answer(
    fake: FakeTransactionLink, http: aiohttp.ClientSession
) -> None:
    fake.set_answer_delay("POST", "/workflows", 0.2)
    fake.set_rate_limit("POST", "/workflows", per_second=0.1)
    for expected in (200, 429):  # refusals come as late as answers
        started = time.monotonic()
        assert (await launch(http, fake.base_url, fake.org_token))[0] == expected
        assert time.monotonic() - started >= 0.2
    fake.clear_rate_limits()
    fake.set_answer_delay("POST", "/workflows", 0)
    started = time.monotonic()
    assert (await launch(http, fake.base_url, fake.org_token))[0] == 200
    assert time.monotonic() - started < 0.2


async def test_a_delayed_answer_ends_when_the_fake_closes(http: aiohttp.ClientSession) -> None:
    fake = FakeTransactionLink()
    await fake.start()
    fake.set_answer_delay("*", "/**", 30)
    pending = asyncio.ensure_future(launch(http, fake.base_url, fake.org_token))
    for _ in range(500):
        if fake.in_flight("POST", "/workflows"):
            break
        await anyio.sleep(0.01)
    started = time.monotonic()
    await fake.aclose()
    assert time.monotonic() - started < 1.5
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        await pending


async def test_limits_and_delays_set_from_another_process(http: aiohttp.ClientSession) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "transactionlink_async.testing",
        "serve",
        "--rate-limit",
        "POST /workflows 0.2 burst=2",
        "--delay",
        "GET /workflows/* 0.2",
        stdout=asyncio.subprocess.PIPE,
        env=env,
        cwd=REPO_ROOT,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
        base, token = info["base_url"], info["org_token"]
        statuses = [(await launch(http, base, token))[0] for _ in range(3)]
        assert statuses == [200, 200, 429]

        async with http.get(f"{base}/_fake/rate_limits") as response:
            controls = await response.json()
        assert (
            controls["rate_limits"][0] | {"admitted": 2, "refused": 1} == controls["rate_limits"][0]
        )
        assert controls["delays"] == [{"method": "GET", "path": "/workflows/*", "seconds": 0.2}]

        # Changed and cleared over HTTP.
        async with http.post(
            f"{base}/_fake/rate_limits",
            json={"method": "POST", "path": "/workflows", "per_second": 0.2, "burst": 1},
        ) as response:
            assert response.status == 200
        assert [(await launch(http, base, token))[0] for _ in range(2)] == [200, 429]
        async with http.delete(f"{base}/_fake/rate_limits") as response:
            assert response.status == 200
        assert (await launch(http, base, token))[0] == 200

        async with http.post(
            f"{base}/_fake/delays", json={"method": "POST", "path": "/workflows", "seconds": 0.2}
        ) as response:
            assert response.status == 200
        started = time.monotonic()
        assert (await launch(http, base, token))[0] == 200
        assert time.monotonic() - started >= 0.2
        async with http.delete(f"{base}/_fake/delays") as response:
            assert response.status == 200

        async with http.get(f"{base}/_fake/stats") as response:
            assert (await response.json())["answers"]["POST /workflows"]["429"] == 2
        for bad in (
            {"method": "POST", "path": "/workflows"},
            {"method": "POST", "path": "/workflows", "per_second": -1},
            {"method": "POST", "path": "/workflows", "per_second": 1, "brust": 2},
        ):
            async with http.post(f"{base}/_fake/rate_limits", json=bad) as response:
                assert response.status == 400
        async with http.post(f"{base}/_fake/delays", json={"seconds": 1}) as response:
            assert response.status == 400
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
