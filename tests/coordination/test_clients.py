"""TransactionLink clients sharing a RedisCoordination act as one: token, wake-ups, outages."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest
from redis_server import RedisServer
from support import FAST_RETRY

from transactionlink_async import ApiKey, PollPolicy, TransactionLink
from transactionlink_async.coordination import LocalCoordination, RedisCoordination
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio

#: A wait that polls only every 30 s: ending sooner proves a wake-up ended it.
SLOW_POLL = PollPolicy(initial=30, multiplier=1.0, maximum=30, jitter=0.0)

Clients = Callable[..., TransactionLink]


@pytest.fixture
async def clients(fake: FakeTransactionLink, redis_url: str) -> AsyncIterator[Clients]:
    """`clients(**redis_options)`: an ApiKey client of `fake` with a RedisCoordination of its
    own, as each process of a deployment has."""
    made: list[TransactionLink] = []

    def make(**options: Any) -> TransactionLink:
        options.setdefault("timeout", 2.0)
        client = TransactionLink(
            ApiKey(fake.api_key, fake.api_secret),
            base_url=fake.base_url,
            retry=FAST_RETRY,
            coordination=RedisCoordination(redis_url, **options),
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


async def _get_everywhere(workers: list[TransactionLink], execution_id: str) -> None:
    await asyncio.gather(*(w.workflows.get(execution_id) for w in workers for _ in range(5)))


async def test_clients_sharing_redis_authorize_once(
    fake: FakeTransactionLink, clients: Clients
) -> None:
    execution_id = fake.create_execution(status="RUNNING")
    workers = [clients() for _ in range(4)]
    await _get_everywhere(workers, execution_id)
    assert fake.count("POST", "/auth/authorize") == 1
    assert fake.count("POST", "/auth/refresh") == 0


async def test_without_coordination_each_client_authorizes_alone(
    fake: FakeTransactionLink,
) -> None:
    """The figure the shared token improves on (and what the default keeps)."""
    execution_id = fake.create_execution(status="RUNNING")
    workers = [
        TransactionLink(ApiKey(fake.api_key, fake.api_secret), base_url=fake.base_url)
        for _ in range(3)
    ]
    try:
        await _get_everywhere(workers, execution_id)
    finally:
        for worker in workers:
            await worker.aclose()
    assert fake.count("POST", "/auth/authorize") == 3


async def test_one_renewal_per_expiry_for_all_clients(
    fake: FakeTransactionLink, clients: Clients
) -> None:
    fake.set_access_token_lifetime(1.0)
    execution_id = fake.create_execution(status="RUNNING")
    workers = [clients() for _ in range(4)]
    started = time.monotonic()
    while time.monotonic() - started < 1.6:
        await _get_everywhere(workers, execution_id)
        await anyio.sleep(0.05)
    # Renewed at half its life (0.5 s), so about three tokens in 1.6 s, whatever the count
    # of clients; never a 401, never a refresh token spent twice (it would be refused).
    assert fake.count("POST", "/auth/authorize") == 1
    assert 2 <= fake.count("POST", "/auth/refresh") <= 3
    assert not [e for e in fake.journal if e.status == 401]


async def test_a_401_renews_once_for_every_client(
    fake: FakeTransactionLink, clients: Clients
) -> None:
    execution_id = fake.create_execution(status="RUNNING")
    workers = [clients() for _ in range(4)]
    await _get_everywhere(workers, execution_id)
    fake.expire_access_tokens()
    await _get_everywhere(workers, execution_id)
    assert fake.count("POST", "/auth/refresh") == 1
    assert fake.count("POST", "/auth/authorize") == 1


async def test_a_429_heard_from_another_client_paces_this_one_too(
    fake: FakeTransactionLink, clients: Clients
) -> None:
    execution_id = fake.create_execution(status="RUNNING")
    refused, listening = clients(), clients()
    await listening.workflows.get(execution_id)  # joined, and never answered 429 itself
    pace = listening.workflows.launch_many([], concurrency=1)
    assert pace.current_rate is None
    fake.inject("POST", "/workflows", status=429, retry_after="2")
    launching = asyncio.ensure_future(
        refused.workflows.initialise(workflow_definition_id="kyc", locale="en")
    )
    with anyio.fail_after(5):
        while not any(e.status == 429 for e in fake.requests("POST", "/workflows")):  # noqa: ASYNC110
            await anyio.sleep(0.01)
        # Held by the other client's pause once it is heard (within the pause), and paced
        # from then on as if the 429 had been its own.
        while pace.current_rate is None:
            await listening.workflows.get(execution_id)
    assert pace.current_rate > 0
    await launching
    answers = [e.status for e in fake.requests("POST", "/workflows")]
    assert answers == [429, 200]


async def test_a_webhook_handled_by_one_client_ends_the_waits_of_the_others(
    fake: FakeTransactionLink, clients: Clients
) -> None:
    execution_id = fake.create_execution(status="RUNNING")
    receiver, *waiters = [clients() for _ in range(3)]
    waits = [
        asyncio.ensure_future(w.workflows.wait_for_completion(execution_id, poll=SLOW_POLL))
        for w in waiters
    ]
    await anyio.sleep(0.2)  # the waits are asleep, their subscriptions up
    fake.set_status(execution_id, "COMPLETED")
    await receiver.webhooks.handle(
        *fake.webhooks.signed({"workflowId": execution_id, "status": "COMPLETED"})
    )
    started = time.monotonic()
    with anyio.fail_after(2):
        finished = await asyncio.gather(*waits)
    assert time.monotonic() - started < 1
    assert {e.status for e in finished} == {"COMPLETED"}
    # Each wait confirmed with one GET.
    assert fake.count("GET", f"/workflows/{execution_id}") == len(waiters)


async def test_a_wait_starting_after_the_delivery_confirms_at_once(
    fake: FakeTransactionLink, clients: Clients
) -> None:
    execution_id = fake.create_execution(status="COMPLETED")
    receiver, late = clients(), clients()
    await receiver.webhooks.handle(
        *fake.webhooks.signed({"workflowId": execution_id, "status": "COMPLETED"})
    )
    with anyio.fail_after(2):
        execution = await late.workflows.wait_for_completion(execution_id, poll=SLOW_POLL)
    assert execution.status == "COMPLETED"
    assert fake.count("GET", f"/workflows/{execution_id}") == 1


async def test_with_redis_stopped_every_call_still_succeeds_then_coordination_resumes(
    fake: FakeTransactionLink, clients: Clients, redis_server: RedisServer
) -> None:
    quick = PollPolicy(initial=0.1, multiplier=1.0, maximum=0.1, jitter=0.0)
    execution_id = fake.create_execution(status="RUNNING")
    redis_server.stop()
    try:
        receiver, waiter = clients(timeout=0.25, max_backoff=0.5), clients(timeout=0.25)
        await _get_everywhere([receiver, waiter], execution_id)  # each authorizes alone
        wait = asyncio.ensure_future(
            waiter.workflows.wait_for_completion(execution_id, poll=quick, timeout=5)
        )
        fake.set_status(execution_id, "COMPLETED")
        await receiver.webhooks.handle(
            *fake.webhooks.signed({"workflowId": execution_id, "status": "COMPLETED"})
        )
        assert (await wait).status == "COMPLETED"  # by polling
    finally:
        redis_server.start()
    # Back: the next delivery wakes a slow-polling wait in the other client again.
    second = fake.create_execution(status="RUNNING")
    wait = asyncio.ensure_future(waiter.workflows.wait_for_completion(second, poll=SLOW_POLL))
    fake.set_status(second, "COMPLETED")
    with anyio.fail_after(15):
        while not wait.done():
            await receiver.webhooks.handle(
                *fake.webhooks.signed({"workflowId": second, "status": "COMPLETED"})
            )
            await asyncio.wait([wait], timeout=0.5)
    assert wait.result().status == "COMPLETED"


async def test_no_token_or_secret_is_readable_in_redis(
    fake: FakeTransactionLink, clients: Clients, raw: Any
) -> None:
    fake.set_access_token_lifetime(0.4)
    execution_id = fake.create_execution(status="RUNNING")
    workers = [clients() for _ in range(3)]
    for _ in range(4):  # authorize, then refreshes
        await _get_everywhere(workers, execution_id)
        await anyio.sleep(0.25)
    fake.expire_access_tokens()
    await _get_everywhere(workers, execution_id)
    await workers[0].webhooks.handle(
        *fake.webhooks.signed({"workflowId": execution_id, "status": "COMPLETED"})
    )
    assert fake.count("POST", "/auth/refresh") >= 2

    secrets = {fake.api_key, fake.api_secret}
    for entry in fake.journal:
        bearer = entry.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            secrets.add(bearer.removeprefix("Bearer "))
        if entry.path == "/auth/refresh":
            secrets.add(entry.json()["refreshToken"])
    # Also any token shaped like the fake's, including the current ones never sent yet.
    shapes = re.compile(rb"eyJ[A-Za-z0-9_-]{16}|rt_[A-Za-z0-9_-]{16}")
    stored = await _everything_in(raw)
    assert stored, "nothing was stored: the scan would prove nothing"
    assert any(b":token:" in name for name, _ in stored)
    for name, value in stored:
        for text in (name, value):
            assert not shapes.search(text), (name, text[:80])
            for secret in secrets:
                assert secret.encode() not in text, name


async def _everything_in(raw: Any) -> list[tuple[bytes, bytes]]:
    """Every key with its value(s), whatever their type, as bytes."""
    found = []
    async for name in raw.scan_iter("*"):
        kind = (await raw.type(name)).decode()
        if kind == "string":
            parts = [await raw.get(name)]
        elif kind == "hash":
            parts = [b for pair in (await raw.hgetall(name)).items() for b in pair]
        elif kind == "set":
            parts = list(await raw.smembers(name))
        else:
            raise AssertionError(f"unexpected {kind} at {name!r}")
        found.append((name, b"\0".join(p for p in parts if p is not None)))
    return found


async def test_from_env_gives_a_redis_coordination_when_asked(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    monkeypatch.setenv("TRANSACTIONLINK_TOKEN", "tot_abc")
    monkeypatch.setenv("TRANSACTIONLINK_REDIS_URL", redis_url)
    async with TransactionLink.from_env() as shared:
        assert isinstance(shared.coordination, RedisCoordination)
    async with TransactionLink.from_env(coordination=None) as alone:
        assert isinstance(alone.coordination, LocalCoordination)
    monkeypatch.setenv("TRANSACTIONLINK_REDIS_URL", "http://nope")
    with pytest.raises(ValueError, match="redis://"):
        TransactionLink.from_env()


def test_coordination_must_be_a_backend() -> None:
    with pytest.raises(TypeError, match="RedisCoordination"):
        TransactionLink(
            ApiKey("k", "s"),
            coordination="redis://127.0.0.1",  # type: ignore[arg-type]
        )
