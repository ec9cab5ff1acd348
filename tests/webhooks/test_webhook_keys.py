"""The signing-key cache: LRU, one fetch per kid, misses remembered, a fetch budget, outages."""

from __future__ import annotations

import uuid

import anyio
import pytest

from transactionlink_async import (
    ServerError,
    TransportError,
    WebhookKeyUnavailableError,
    WebhookVerificationError,
)
from transactionlink_async._webhooks.keys import KeyCache, TokenBucket

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Api:
    """A scripted key endpoint: kid -> key text, None (404), or an exception to raise."""

    def __init__(self) -> None:
        self.keys: dict[str, bytes | Exception | None] = {}
        self.calls: list[str] = []
        self.gate: anyio.Event | None = None

    async def fetch(self, kid: str) -> bytes | None:
        self.calls.append(kid)
        if self.gate is not None:
            await self.gate.wait()
        answer = self.keys.get(kid)
        if isinstance(answer, Exception):
            raise answer
        return answer


def load(text: bytes) -> str:
    if text.startswith(b"bad"):
        raise ValueError("not a key")
    return text.decode()


def cache(api: Api, clock: Clock, **kwargs: object) -> KeyCache[str]:
    return KeyCache(api.fetch, load, clock=clock, **kwargs)  # type: ignore[arg-type]


def test_token_bucket_allows_a_burst_then_one_per_interval() -> None:
    bucket = TokenBucket(3, 2.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(1.9)
    assert bucket.take(2.0)
    assert not bucket.take(2.0)
    # A long pause refills to the capacity, not beyond.
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    with pytest.raises(ValueError, match="capacity"):
        TokenBucket(0, 1.0, now=0.0)


async def test_a_key_is_fetched_once_and_then_served_from_memory() -> None:
    api, clock = Api(), Clock()
    api.keys["k1"] = b"KEY1"
    keys = cache(api, clock)
    assert [await keys.get("k1") for _ in range(5)] == ["KEY1"] * 5
    assert api.calls == ["k1"]
    assert keys.fetches == 1


async def test_concurrent_lookups_of_a_new_kid_make_one_fetch() -> None:
    api, clock = Api(), Clock()
    api.keys["k1"] = b"KEY1"
    api.gate = anyio.Event()
    keys = cache(api, clock)
    results: list[str] = []

    async def look() -> None:
        results.append(await keys.get("k1"))

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(look)
        await anyio.wait_all_tasks_blocked()
        api.gate.set()
    assert results == ["KEY1"] * 50
    assert api.calls == ["k1"]


async def test_concurrent_lookups_of_an_unknown_kid_make_one_fetch_and_all_fail() -> None:
    api, clock = Api(), Clock()
    api.gate = anyio.Event()
    keys = cache(api, clock)
    failures: list[BaseException] = []

    async def look() -> None:
        try:
            await keys.get("nope")
        except WebhookVerificationError as exc:
            failures.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(look)
        await anyio.wait_all_tasks_blocked()
        api.gate.set()
    assert len(failures) == 20
    assert len({id(f) for f in failures}) == 20  # each task raises its own copy
    assert all("unknown signing key id" in str(f) for f in failures)
    assert api.calls == ["nope"]


async def test_a_cancelled_fetch_lets_a_waiting_lookup_fetch_again() -> None:
    api, clock = Api(), Clock()
    api.keys["k1"] = b"KEY1"
    api.gate = anyio.Event()
    keys = cache(api, clock)
    scope = anyio.CancelScope()
    got: list[str] = []

    async def first() -> None:
        with scope:
            await keys.get("k1")

    async def second() -> None:
        got.append(await keys.get("k1"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(first)
        await anyio.wait_all_tasks_blocked()  # first is fetching
        tg.start_soon(second)
        await anyio.wait_all_tasks_blocked()  # second waits for first's fetch
        scope.cancel()
        await anyio.wait_all_tasks_blocked()  # second fetches itself
        api.gate.set()
    assert got == ["KEY1"]
    assert api.calls == ["k1", "k1"]


async def test_misses_are_remembered_for_miss_ttl() -> None:
    api, clock = Api(), Clock()
    keys = cache(api, clock, miss_ttl=15.0)
    for _ in range(3):
        with pytest.raises(WebhookVerificationError, match="unknown signing key id"):
            await keys.get("gone")
    assert api.calls == ["gone"]
    clock.now += 15.0
    api.keys["gone"] = b"KEY"
    assert await keys.get("gone") == "KEY"
    assert api.calls == ["gone", "gone"]


async def test_the_fetch_budget_limits_lookups_of_made_up_kids() -> None:
    api, clock = Api(), Clock()
    keys = cache(api, clock, fetch_burst=4, fetch_interval=2.0)
    outcomes = []
    for n in range(10):
        try:
            await keys.get(f"random-{n}")
        except WebhookVerificationError as exc:
            outcomes.append(type(exc))
    assert len(api.calls) == 4
    assert outcomes == [WebhookVerificationError] * 4 + [WebhookKeyUnavailableError] * 6
    clock.now += 2.0
    api.keys["real"] = b"KEY"
    assert await keys.get("real") == "KEY"
    assert len(api.calls) == 5


async def test_lru_keeps_at_most_max_keys() -> None:
    api, clock = Api(), Clock()
    for n in range(4):
        api.keys[f"k{n}"] = f"KEY{n}".encode()
    keys = cache(api, clock, max_keys=3, fetch_burst=100)
    for kid in ("k0", "k1", "k2", "k0", "k3"):  # k0 used again: k1 is the least recent
        await keys.get(kid)
    assert len(keys) == 3
    before = len(api.calls)
    await keys.get("k0")
    await keys.get("k2")
    await keys.get("k3")
    assert len(api.calls) == before
    await keys.get("k1")
    assert len(api.calls) == before + 1


@pytest.mark.parametrize(
    "error",
    [
        ServerError("down", status=500, method="GET", url="u"),
        TransportError("x", request_sent=True),
    ],
)
async def test_an_outage_is_unavailable_and_not_cached(error: Exception) -> None:
    api, clock = Api(), Clock()
    api.keys["k1"] = error
    keys = cache(api, clock)
    with pytest.raises(WebhookKeyUnavailableError, match="could not be fetched"):
        await keys.get("k1")
    api.keys["k1"] = b"KEY1"
    assert await keys.get("k1") == "KEY1"
    assert api.calls == ["k1", "k1"]


async def test_a_slow_fetch_times_out_as_unavailable() -> None:
    api, clock = Api(), Clock()
    api.gate = anyio.Event()  # never set
    keys = cache(api, clock, fetch_timeout=0.05)
    with anyio.fail_after(2):
        with pytest.raises(WebhookKeyUnavailableError):
            await keys.get("k1")


async def test_an_expired_key_is_fetched_again_and_kept_when_the_api_is_down() -> None:
    api, clock = Api(), Clock()
    api.keys["k1"] = b"KEY1"
    keys = cache(api, clock, key_ttl=100.0)
    assert await keys.get("k1") == "KEY1"
    clock.now += 100.0
    api.keys["k1"] = ServerError("down", status=503, method="GET", url="u")
    assert await keys.get("k1") == "KEY1"
    assert api.calls == ["k1", "k1"]
    # Revoked: a 404 on the refetch drops the key.
    clock.now += 100.0
    api.keys["k1"] = None
    with pytest.raises(WebhookVerificationError, match="unknown"):
        await keys.get("k1")


async def test_an_unusable_key_answer_is_a_rejection_remembered_as_a_miss() -> None:
    api, clock = Api(), Clock()
    api.keys["k1"] = b"bad key"
    keys = cache(api, clock)
    for _ in range(2):
        with pytest.raises(WebhookVerificationError, match="unusable") as info:
            await keys.get("k1")
        assert not isinstance(info.value, WebhookKeyUnavailableError)
    assert api.calls == ["k1"]


async def test_a_flood_of_made_up_kids_does_not_hold_a_new_kid_past_its_first_retry() -> None:
    # Made-up kids, each named once, 100 a second; the sender's new kid is first named at
    # 3 s, when the budget is long gone, and retried 5 s later, as the sender does.
    api, clock = Api(), Clock()
    api.keys["rotated"] = b"NEW KEY"
    keys = cache(api, clock)
    start = clock.now
    answers: dict[float, str] = {}
    for step in range(1500):
        clock.now = start + step / 100
        with pytest.raises(WebhookVerificationError):
            await keys.get(str(uuid.uuid4()))
        if step in (300, 800, 1300):
            try:
                answers[step / 100] = await keys.get("rotated")
            except WebhookKeyUnavailableError:
                answers[step / 100] = "503"
    assert answers == {3.0: "503", 8.0: "NEW KEY", 13.0: "NEW KEY"}
    # Still bounded: two budgets of a burst of 8, then one per 2 s each.
    assert keys.fetches <= 2 * (8 + 15 / 2.0)


async def test_only_a_kid_turned_away_before_reaches_the_second_budget() -> None:
    api, clock = Api(), Clock()
    keys = cache(api, clock, fetch_burst=2)
    for kid in ("a", "b", "c", "d"):  # two fetched (404), two turned away
        with pytest.raises(WebhookVerificationError):
            await keys.get(kid)
    assert api.calls == ["a", "b"]
    for kid in ("e", "f"):  # new kids: the first budget is empty
        with pytest.raises(WebhookKeyUnavailableError):
            await keys.get(kid)
    for kid in ("c", "d"):  # asked again: the second budget, of two
        with pytest.raises(WebhookVerificationError, match="unknown signing key id"):
            await keys.get(kid)
    with pytest.raises(WebhookKeyUnavailableError):
        await keys.get("e")  # asked again too, but both budgets are empty now
    assert api.calls == ["a", "b", "c", "d"]
    clock.now += 2.0  # one more in each budget
    for kid in ("e", "f"):
        with pytest.raises(WebhookVerificationError, match="unknown signing key id"):
            await keys.get(kid)
    with pytest.raises(WebhookKeyUnavailableError):
        await keys.get("g")
    assert api.calls == ["a", "b", "c", "d", "e", "f"]


async def test_turned_away_kids_are_remembered_boundedly_and_for_a_while() -> None:
    api, clock = Api(), Clock()
    keys = cache(api, clock, fetch_burst=1, fetch_interval=100.0, max_refused=2)
    with pytest.raises(WebhookVerificationError):
        await keys.get("spent")
    for kid in ("a", "b", "c"):  # "a" falls out: only two are remembered
        with pytest.raises(WebhookKeyUnavailableError):
            await keys.get(kid)
    with pytest.raises(WebhookKeyUnavailableError):
        await keys.get("a")  # a first sight again, and "b" is pushed out by it
    with pytest.raises(WebhookVerificationError, match="unknown signing key id"):
        await keys.get("c")
    assert api.calls == ["spent", "c"]

    keys = cache(api, clock, fetch_burst=1, fetch_interval=100.0, refused_ttl=60.0)
    with pytest.raises(WebhookVerificationError):
        await keys.get("spent")
    with pytest.raises(WebhookKeyUnavailableError):
        await keys.get("late")
    clock.now += 60.0  # forgotten: a first sight, and the first budget is still empty
    with pytest.raises(WebhookKeyUnavailableError):
        await keys.get("late")
