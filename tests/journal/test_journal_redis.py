"""RedisJournal: shared claims, leases that tell a live batch from a dead one, clean errors."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import redis.asyncio as redis_asyncio
from redis_server import RedisServer, find_redis_server

from transactionlink_async import ClientClosedError, WorkflowExecution, WorkflowStatus
from transactionlink_async.journal import JournalUnavailableError, KeyState, RedisJournal

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


def fresh_name() -> str:
    return f"batch-{uuid.uuid4().hex[:8]}"


async def until_state(journal: RedisJournal, key: str, state: KeyState) -> None:
    with anyio.fail_after(10):
        while True:
            entry = await journal.get(key)
            if entry is not None and entry.state is state:
                return
            await anyio.sleep(0.02)


async def test_journals_of_one_name_share_claims_and_records(redis_url: str) -> None:
    name = fresh_name()
    async with RedisJournal(redis_url, name) as first, RedisJournal(redis_url, name) as second:
        assert (await first.claim("k")).won
        lost = await second.claim("k")
        assert not lost.won
        assert lost.entry is not None
        assert lost.entry.state is KeyState.CLAIMED
        await first.record_launched("k", WorkflowExecution(id="x-1", status="CREATED"))
        seen = await second.get("k")
        assert seen is not None
        assert seen.state is KeyState.LAUNCHED
        assert seen.execution_id == "x-1"
        async with RedisJournal(redis_url, fresh_name()) as elsewhere:
            assert (await elsewhere.claim("k")).won, "another name is another journal"


async def test_a_live_journal_renews_its_lease(redis_url: str) -> None:
    name = fresh_name()
    client = redis_asyncio.Redis.from_url(redis_url)
    try:
        async with RedisJournal(redis_url, name, lease=0.3) as journal:
            await journal.claim("k")
            leases = [key async for key in client.scan_iter(match=f"*{name}*:owner:*")]
            assert len(leases) == 1
            # The time left only goes down between renewals: seeing it go up is one.
            with anyio.fail_after(5):
                previous = await client.pttl(leases[0])
                while (left := await client.pttl(leases[0])) <= previous:
                    previous = left
                    await anyio.sleep(0.01)
        # Closed: the lease is gone with it, and so is every key but the entries.
        keys = [key async for key in client.scan_iter(match=f"*{name}*")]
        assert [key.decode() for key in keys] == [f"transactionlink:journal:{{{name}}}:entries"]
    finally:
        await client.aclose()


async def test_the_claims_of_a_closed_journal_are_in_doubt_at_once(redis_url: str) -> None:
    name = fresh_name()
    async with RedisJournal(redis_url, name) as watcher:
        async with RedisJournal(redis_url, name) as batch:
            await batch.claim("k")
            assert (await watcher.get("k")).state is KeyState.CLAIMED  # type: ignore[union-attr]
            with pytest.raises(ValueError, match="being launched"):
                await watcher.resolve("k", None)
        assert (await watcher.get("k")).state is KeyState.IN_DOUBT  # type: ignore[union-attr]
        assert not (await watcher.claim("k")).won
        await watcher.resolve("k", None)
        assert (await watcher.claim("k")).won


CLAIM_THEN_HANG = """
import asyncio, sys
from transactionlink_async.journal import RedisJournal
async def main():
    journal = RedisJournal(sys.argv[1], sys.argv[2], lease=0.5)
    await journal.claim("k")
    print("claimed", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""


async def test_the_claims_of_a_killed_process_turn_in_doubt_when_its_lease_ends(
    redis_url: str,
) -> None:
    name = fresh_name()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    async with (
        RedisJournal(redis_url, name) as watcher,
        await anyio.open_process(
            [sys.executable, "-c", CLAIM_THEN_HANG, redis_url, name], env=env, cwd=ROOT
        ) as process,
    ):
        assert process.stdout is not None
        with anyio.fail_after(30):
            assert b"claimed" in await process.stdout.receive()
        # Alive and renewing: in flight elsewhere, not in doubt.
        assert (await watcher.get("k")).state is KeyState.CLAIMED  # type: ignore[union-attr]
        process.send_signal(signal.SIGKILL)
        await process.wait()
        await until_state(watcher, "k", KeyState.IN_DOUBT)
        assert not (await watcher.claim("k")).won


async def test_no_secret_reaches_redis(redis_url: str) -> None:
    name = fresh_name()
    async with RedisJournal(redis_url, name) as journal:
        await journal.claim("k")
        await journal.record_launched(
            "k",
            WorkflowExecution(
                id="x-1",
                status=WorkflowStatus.CREATED,
                token="tok-secret-123",
                link="https://hosted.example/?t=tok-secret-123",
            ),
        )
        client = redis_asyncio.Redis.from_url(redis_url)
        try:
            dump = b""
            async for key in client.scan_iter(match=f"*{name}*"):
                dump += key
                if await client.type(key) == b"hash":
                    for field, value in (await client.hgetall(key)).items():
                        dump += field + value
        finally:
            await client.aclose()
    assert b"x-1" in dump
    assert b"tok-secret-123" not in dump


async def test_redis_down_gives_a_clear_error_without_the_password(
    redis_server: RedisServer, redis_url: str
) -> None:
    password_url = redis_url.replace("redis://", "redis://:hunter2@")
    async with RedisJournal(password_url, fresh_name(), timeout=0.5) as journal:
        with pytest.raises(JournalUnavailableError) as refused:
            await journal.claim("k")
    assert "hunter2" not in str(refused.value)
    assert "hunter2" not in repr(RedisJournal(password_url, "b"))
    redis_server.stop()
    async with RedisJournal(redis_url, fresh_name(), timeout=0.5) as journal:
        with anyio.fail_after(5), pytest.raises(JournalUnavailableError, match="did not answer"):
            await journal.claim("k")
        with anyio.fail_after(5), pytest.raises(JournalUnavailableError):
            await journal.get("k")


async def test_closing_leaves_no_task_behind_and_refuses_later_calls(redis_url: str) -> None:
    before = asyncio.all_tasks()
    journal = RedisJournal(redis_url, fresh_name(), lease=0.2)
    await journal.claim("k")
    assert len(asyncio.all_tasks() - before) == 1  # the lease renewal
    await journal.aclose()
    await journal.aclose()
    assert asyncio.all_tasks() - before == set()
    with pytest.raises(ClientClosedError):
        await journal.get("k")


async def test_a_claim_cancelled_before_sending_gives_the_key_back(redis_url: str) -> None:
    async with RedisJournal(redis_url, fresh_name()) as journal:
        await journal.claim("warm-up")
        task = asyncio.ensure_future(journal.claim("k"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        entry = await journal.get("k")
        assert entry is None or entry.state is KeyState.RELEASED
        assert (await journal.claim("k")).won


async def test_entries_list_every_key_once_with_its_state(redis_url: str) -> None:
    name = fresh_name()
    async with RedisJournal(redis_url, name) as journal:
        keys = [f"k{n}" for n in range(1300)]
        await asyncio.gather(*(journal.claim(key) for key in keys))
        for key in keys[:100]:
            await journal.record_in_doubt(key)
        states = {entry.key: entry.state async for entry in journal.entries()}
        assert sorted(states) == sorted(keys)
        assert sum(state is KeyState.IN_DOUBT for state in states.values()) == 100
        doubt = [e.key async for e in journal.entries(KeyState.IN_DOUBT)]
        assert sorted(doubt) == sorted(keys[:100])


def test_names_and_settings_are_checked_up_front() -> None:
    url = "redis://127.0.0.1:1/0"
    for bad in ("", "has space", "brace{", "x" * 201):
        with pytest.raises(ValueError, match="name"):
            RedisJournal(url, bad)
    with pytest.raises(TypeError):
        RedisJournal(url, 7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="redis://"):
        RedisJournal("http://127.0.0.1", "b")
    for lease in (0, float("nan"), float("inf"), -1):
        with pytest.raises(ValueError, match="lease"):
            RedisJournal(url, "b", lease=lease)
    with pytest.raises(TypeError):
        RedisJournal(url, "b", lease=True)


@pytest.fixture
def redis_without_smismember() -> Iterator[str]:
    """A real redis-server without SMISMEMBER, as servers before Redis 6.2 are."""
    binary = find_redis_server()
    if binary is None:
        pytest.skip("needs a real redis-server")
    server = RedisServer(binary, options=("--rename-command", "SMISMEMBER", ""))
    server.start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.mark.parametrize("server", ["redis_url", "redis_without_smismember"])
async def test_a_run_sees_keys_repeated_within_and_across_lookups(
    server: str, request: pytest.FixtureRequest
) -> None:
    url: str = request.getfixturevalue(server)
    async with RedisJournal(url, fresh_name()) as journal:
        await journal.record_launched("b", WorkflowExecution(id="x-b", status="CREATED"))
        first = await journal.lookup(["a", "b", "a", "c"], run="r1")
        second = await journal.lookup(["c", "d", "b", "d"], run="r1")
        other_run = await journal.lookup(["a", "b"], run="r2")
        assert [found.repeated for found in first] == [False, False, True, False]
        assert [found.repeated for found in second] == [True, False, True, True]
        assert [found.repeated for found in other_run] == [False, False]
        entries = [found.entry for found in first]
        assert [None if e is None else e.execution_id for e in entries] == [
            None,
            "x-b",
            None,
            None,
        ]
        await journal.end_run("r1")
        again = await journal.lookup(["a", "b"], run="r1")
        assert [found.repeated for found in again] == [False, False]
