"""Auth answers over real sockets: odd ones, refused ones, rotated refresh tokens, secrets."""

from __future__ import annotations

import gc
import logging
import traceback
import weakref
from typing import Any

import aiohttp
import anyio
import pytest
from support import FAST_RETRY

from transactionlink_async import (
    ApiKey,
    InvalidResponseError,
    RetryPolicy,
    ServerError,
    TransactionLink,
    TransactionLinkError,
)
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio


def key_client(fake: FakeTransactionLink) -> TransactionLink:
    return TransactionLink(
        ApiKey(fake.api_key, fake.api_secret), base_url=fake.base_url, retry=FAST_RETRY
    )


async def real_answer(fake: FakeTransactionLink, path: str = "/auth/authorize") -> dict[str, Any]:
    """A genuine token answer of the fake (its access token works), taken outside the SDK."""
    async with aiohttp.ClientSession() as session:
        payload = {"key": fake.api_key, "secret": fake.api_secret}
        async with session.post(fake.base_url + path, json=payload) as response:
            assert response.status == 200
            answer: dict[str, Any] = await response.json()
    return answer


# -- unreadable optional fields ---------------------------------------------------------------


@pytest.mark.parametrize(
    "odd",
    [
        {"expiryDuration": "PT1H"},
        {"expiryDuration": "3600s"},
        {"expiryDuration": True},
        {"expiryDuration": "NaN"},
        {"tokenType": 5},
        {"refreshToken": 42},
        {"expiryDuration": [], "tokenType": {}, "refreshToken": None},
    ],
    ids=lambda odd: ",".join(f"{k}={v!r}" for k, v in odd.items()),
)
async def test_unreadable_optional_fields_do_not_fail_the_login(
    fake: FakeTransactionLink, odd: dict[str, Any]
) -> None:
    fake.inject("POST", "/auth/authorize", status=200, body=(await real_answer(fake)) | odd)
    execution_id = fake.create_execution()
    async with key_client(fake) as tl:
        assert (await tl.workflows.get(execution_id)).id == execution_id


async def test_an_unreadable_expiry_falls_back_to_the_tokens_exp_claim(
    fake: FakeTransactionLink,
) -> None:
    # As an ISO duration "PT1H" would be an hour; the token itself says 2 seconds.
    fake.set_access_token_lifetime(2)
    answer = (await real_answer(fake)) | {"expiryDuration": "PT1H"}
    fake.inject("POST", "/auth/authorize", status=200, body=answer)
    execution_id = fake.create_execution()
    async with key_client(fake) as tl:
        await tl.workflows.get(execution_id)
        with anyio.fail_after(5):
            # Renewed at half the JWT's life (1 s), before any call could be refused.
            while fake.count("POST", "/auth/refresh") == 0:
                await tl.workflows.get(execution_id)
                await anyio.sleep(0.05)
    assert all(e.status == 200 for e in fake.requests("GET", "/workflows/*"))


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ({"refreshToken": "rt-secret-1"}, "'accessToken' is missing"),
        ({"accessToken": 42, "refreshToken": "rt-secret-1"}, "'accessToken': expected a string"),
        ({"accessToken": None}, "'accessToken': expected a string, got null"),
        ({"accessToken": ""}, "unusable accessToken"),
        ({"accessToken": "eyJ.secret\r\nX-Injected: 1"}, "unusable accessToken"),
        (["eyJ.secret"], "expected an object, got array"),
        ("eyJ.secret", "expected an object, got string"),
    ],
)
async def test_a_broken_required_part_is_named_exactly(
    fake: FakeTransactionLink, answer: Any, says: str
) -> None:
    fake.inject("POST", "/auth/authorize", status=200, body=answer)
    async with key_client(fake) as tl:
        with pytest.raises(InvalidResponseError, match=says) as caught:
            await tl.workflows.get("ex-1")
    assert "POST /auth/authorize" in str(caught.value)


# -- a refresh answer the SDK cannot read -------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        {"status": "ok"},
        {"token": {"accessToken": "nested"}},
        {"accessToken": 42},
        ["not", "an", "object"],
        b"<html>gateway says hi</html>",
    ],
    ids=["other-shape", "nested", "wrong-type", "array", "not-json"],
)
async def test_an_unreadable_refresh_answer_falls_back_to_authorize(
    fake: FakeTransactionLink, answer: Any
) -> None:
    execution_id = fake.create_execution()
    async with key_client(fake) as tl:
        await tl.workflows.get(execution_id)
        fake.inject("POST", "/auth/refresh", status=200, body=answer)
        fake.expire_access_tokens()
        # The 401 renews: the refresh answer is unusable, so the key authorizes again.
        assert (await tl.workflows.get(execution_id)).id == execution_id
        fake.expire_access_tokens()
        assert (await tl.workflows.get(execution_id)).id == execution_id
    assert [e.path for e in fake.requests("POST", "/auth/*")] == [
        "/auth/authorize",
        "/auth/refresh",
        "/auth/authorize",
        # The new authorize gave a fresh refresh token: the next renewal uses it.
        "/auth/refresh",
    ]
    assert [e.status for e in fake.requests("POST", "/auth/*")] == [200] * 4


# -- a failed renewal with many callers waiting --------------------------------------------


async def test_each_caller_queued_behind_a_failed_renewal_gets_its_own_error(
    fake: FakeTransactionLink,
) -> None:
    execution_id = fake.create_execution()
    errors: list[BaseException] = []
    async with TransactionLink(
        ApiKey(fake.api_key, fake.api_secret),
        base_url=fake.base_url,
        retry=RetryPolicy.no_retries(),
        max_connections=300,
    ) as tl:
        await tl.workflows.get(execution_id)
        fake.expire_access_tokens()
        fake.inject("POST", "/auth/refresh", status=500, times=None)

        async def get() -> None:
            try:
                await tl.workflows.get(execution_id)
            except ServerError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(300):
                tg.start_soon(get)
        # Most callers queued behind a renewal and were told its failure (not their own).
        assert fake.count("POST", "/auth/refresh") < 30
        assert len(errors) == 300
        assert len({id(e) for e in errors}) == 300
        # ...each the same as the failure of the renewal it waited for.
        assert len({str(e) for e in errors}) == fake.count("POST", "/auth/refresh")
        assert all(e.status == 500 for e in errors)  # type: ignore[attr-defined]
        assert max(len(list(traceback.walk_tb(e.__traceback__))) for e in errors) < 60
        # Once the callers let go of their errors, none is kept alive by the client.
        alive = [weakref.ref(e) for e in errors]
        errors.clear()
        gc.collect()
        assert [ref for ref in alive if ref() is not None] == []


# -- rotated refresh tokens ------------------------------------------------------------------


def sdk_auth_requests(fake: FakeTransactionLink, path: str) -> list[Any]:
    """The SDK's own requests to `path` (the test's raw ones have another User-Agent)."""
    return [
        e
        for e in fake.requests("POST", path)
        if e.headers.get("User-Agent", "").startswith("transactionlink-async/")
    ]


async def renewals_until(fake: FakeTransactionLink, tl: TransactionLink, count: int) -> None:
    """Keep calling until the SDK has sent `count` refreshes on its own (early renewal)."""
    execution_id = fake.create_execution()
    with anyio.fail_after(10):
        while len(sdk_auth_requests(fake, "/auth/refresh")) < count:
            await tl.workflows.get(execution_id)
            await anyio.sleep(0.05)


async def test_each_renewal_sends_the_refresh_token_of_the_one_before(
    fake: FakeTransactionLink,
) -> None:
    fake.set_access_token_lifetime(0.6)  # renewed at half its life: every 0.3 s
    async with key_client(fake) as tl:
        await renewals_until(fake, tl, 3)
    refreshes = sdk_auth_requests(fake, "/auth/refresh")[:3]
    tokens = [e.json()["refreshToken"] for e in refreshes]
    # The fake's refresh tokens are single-use: a reused one would be refused (401) and
    # the client would have to authorize again.
    assert len(set(tokens)) == 3
    assert [e.status for e in refreshes] == [200, 200, 200]
    assert len(sdk_auth_requests(fake, "/auth/authorize")) == 1


async def test_the_rotated_refresh_token_is_the_one_sent_next(fake: FakeTransactionLink) -> None:
    fake.set_access_token_lifetime(0.6)
    async with key_client(fake) as tl:
        await tl.workflows.get(fake.create_execution())
        # A genuine refresh answer whose refresh token the test knows, served to the SDK's
        # first renewal in place of its own.
        async with aiohttp.ClientSession() as session:
            issued = await real_answer(fake)
            async with session.post(
                fake.base_url + "/auth/refresh", json={"refreshToken": issued["refreshToken"]}
            ) as response:
                rotated: dict[str, Any] = await response.json()
        fake.inject("POST", "/auth/refresh", status=200, body=rotated)
        await renewals_until(fake, tl, 2)
    first, second = sdk_auth_requests(fake, "/auth/refresh")[:2]
    assert second.json() == {"refreshToken": rotated["refreshToken"]}
    assert second.status == 200
    assert first.json()["refreshToken"] != rotated["refreshToken"]


# -- no value of an auth answer in an error about it ---------------------------------------

ACCESS = "eyJhbGciOiJIUzI1NiJ9.QUNDRVNTLVZBTFVF.c2lnbmF0dXJl"
REFRESH = "rt_REFRESH-VALUE-5b2e9c"

BROKEN_ANSWERS = [
    pytest.param(200, {"accessToken": 42, "refreshToken": REFRESH}, id="wrong-type"),
    pytest.param(200, {"refreshToken": REFRESH, "tokenType": ACCESS}, id="missing"),
    pytest.param(200, {"accessToken": ACCESS + "\r\n", "refreshToken": REFRESH}, id="unusable"),
    pytest.param(200, [ACCESS, REFRESH], id="array"),
    pytest.param(200, f"<p>{ACCESS} {REFRESH}</p>".encode(), id="html"),
    pytest.param(
        200, f'{{"accessToken": "{ACCESS}", "refreshToken": "{REFRESH}'.encode(), id="cut"
    ),
    pytest.param(500, f"upstream said {ACCESS} {REFRESH}".encode(), id="500-text"),
    pytest.param(502, {"accessToken": ACCESS, "refreshToken": REFRESH}, id="502-tokens"),
    pytest.param(401, {"message": f"refresh token {REFRESH} expired"}, id="401-echo"),
    pytest.param(
        400,
        {
            "fingerprint": "fp-1",
            "errors": [{"code": "BAD", "message": "refused"}],
            "accessToken": ACCESS,
            "refreshToken": REFRESH,
        },
        id="400-error-response",
    ),
]


def everything_said(error: BaseException) -> str:
    """The error's text and repr, and those of every error chained to it."""
    said: list[str] = []
    seen: BaseException | None = error
    while seen is not None:
        said += [str(seen), repr(seen), *map(str, getattr(seen, "errors", ()))]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(said)


@pytest.mark.parametrize("renewal", [False, True], ids=["login", "renewal"])
@pytest.mark.parametrize(("status", "answer"), BROKEN_ANSWERS)
async def test_no_value_of_an_auth_answer_appears_in_its_error(
    fake: FakeTransactionLink,
    caplog: pytest.LogCaptureFixture,
    renewal: bool,
    status: int,
    answer: Any,
) -> None:
    caplog.set_level(logging.DEBUG, logger="transactionlink_async")
    # What the SDK sent is as secret as what came back: an endpoint may echo it.
    echoed = {"fingerprint": "fp-2", "errors": [{"message": f"bad secret {fake.api_secret}"}]}
    execution_id = fake.create_execution()
    async with TransactionLink(
        ApiKey(fake.api_key, fake.api_secret),
        base_url=fake.base_url,
        retry=RetryPolicy.no_retries(),
    ) as tl:
        if renewal:
            await tl.workflows.get(execution_id)
            fake.inject("POST", "/auth/refresh", status=status, body=answer)
            fake.expire_access_tokens()
        fake.inject("POST", "/auth/authorize", status=status, body=answer, times=None)
        with pytest.raises(TransactionLinkError) as caught:
            await tl.workflows.get(execution_id)
        fake.clear_faults()
        fake.inject("POST", "/auth/*", status=400, body=echoed, times=None)
        fake.expire_access_tokens()
        with pytest.raises(TransactionLinkError) as echo:
            await tl.workflows.get(execution_id)
    said = everything_said(caught.value) + everything_said(echo.value)
    said += "\n".join(r.getMessage() for r in caplog.records)
    assert "/auth/" in str(caught.value)
    for secret in (ACCESS, REFRESH, fake.api_secret):
        assert secret not in said
