"""Credentials and the token keeper's decisions, driven through an in-memory auth endpoint."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import anyio
import pytest

from transactionlink_async._auth import (
    ApiKey,
    JwtKeeper,
    OrganizationToken,
    renew_at,
    token_lifetime,
)
from transactionlink_async.errors import AuthenticationError, InvalidResponseError
from transactionlink_async.models import AuthTokens

pytestmark = pytest.mark.anyio


def jwt(claims: Mapping[str, Any]) -> str:
    def part(obj: Mapping[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256'})}.{part(claims)}.c2ln"


class AuthEndpoint:
    """Answers like /auth/authorize and /auth/refresh, and counts calls."""

    def __init__(self, *, lifetime: float = 3600.0, refuse_refresh: bool = False) -> None:
        self.calls: list[str] = []
        self.lifetime = lifetime
        self.refuse_refresh = refuse_refresh
        self.delay = 0.0

    async def __call__(self, path: str, payload: Mapping[str, Any]) -> Any:
        self.calls.append(path)
        await anyio.sleep(self.delay)
        if path == "/auth/refresh" and self.refuse_refresh:
            raise AuthenticationError("refused", status=401, method="POST", url=path)
        n = len(self.calls)
        return {
            "accessToken": f"access-{n}",
            "refreshToken": f"refresh-{n}",
            "expiryDuration": self.lifetime,
        }


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_organization_token_format_is_checked() -> None:
    with pytest.raises(ValueError, match="tot_"):
        OrganizationToken("abc")
    with pytest.raises(TypeError):
        OrganizationToken(123)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"newline|control"):
        OrganizationToken("tot_abc\n")
    assert OrganizationToken("tot_abc").token == "tot_abc"


def test_credentials_never_show_their_secrets() -> None:
    token = OrganizationToken("tot_supersecret")
    key = ApiKey("key-123456", "secret-abcdef")
    for text in (repr(token), str(token), repr(key), str(key), repr([token, key])):
        assert "supersecret" not in text
        assert "secret-abcdef" not in text
        assert "key-123456" not in text


def test_api_key_checks() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        ApiKey("", "s")
    with pytest.raises(TypeError):
        ApiKey("k", None)  # type: ignore[arg-type]


def test_token_lifetime_prefers_expiry_duration() -> None:
    tokens = AuthTokens(access_token=jwt({"exp": 5}), expiry_duration=120)
    assert token_lifetime(tokens, wall_now=0) == 120


def test_token_lifetime_falls_back_to_the_jwt_exp() -> None:
    tokens = AuthTokens(access_token=jwt({"exp": 1_000_3600}))
    assert token_lifetime(tokens, wall_now=1_000_0000) == 3600


def test_token_lifetime_unknown() -> None:
    for access in ("opaque", "a.b.c", jwt({"exp": "soon"}), jwt({"exp": 5})):
        assert token_lifetime(AuthTokens(access_token=access), wall_now=10) is None
    assert token_lifetime(AuthTokens(access_token="x", expiry_duration=0), wall_now=0) is None


def test_renewal_margin_is_60s_or_half_a_short_lifetime() -> None:
    assert renew_at(3600, obtained=0) == 3540
    assert renew_at(30, obtained=100) == 115
    assert renew_at(None, obtained=0) is None


async def test_first_use_authorizes_then_reuses() -> None:
    endpoint = AuthEndpoint()
    keeper = JwtKeeper(ApiKey("k", "s"), endpoint)
    assert await keeper.authorization() == ("Bearer access-1", 1)
    assert await keeper.authorization() == ("Bearer access-1", 1)
    assert endpoint.calls == ["/auth/authorize"]


async def test_refreshes_before_expiry_once_for_all_callers() -> None:
    endpoint = AuthEndpoint(lifetime=3600)
    clock = Clock()
    keeper = JwtKeeper(ApiKey("k", "s"), endpoint, clock=clock)
    await keeper.authorization()
    clock.now += 3541  # inside the 60 s margin
    endpoint.delay = 0.01
    results: list[tuple[str, int]] = []

    async def call() -> None:
        results.append(await keeper.authorization())

    async with anyio.create_task_group() as tg:
        for _ in range(300):
            tg.start_soon(call)
    assert endpoint.calls == ["/auth/authorize", "/auth/refresh"]
    assert set(results) == {("Bearer access-2", 2)}


async def test_refused_refresh_falls_back_to_authorize() -> None:
    endpoint = AuthEndpoint(refuse_refresh=True)
    clock = Clock()
    keeper = JwtKeeper(ApiKey("k", "s"), endpoint, clock=clock)
    await keeper.authorization()
    clock.now += 4000
    value, _ = await keeper.authorization()
    assert endpoint.calls == ["/auth/authorize", "/auth/refresh", "/auth/authorize"]
    assert value == "Bearer access-3"


async def test_401_with_the_current_token_renews_once() -> None:
    endpoint = AuthEndpoint()
    keeper = JwtKeeper(ApiKey("k", "s"), endpoint)
    _, generation = await keeper.authorization()
    assert await keeper.renew_after_401(generation)
    assert endpoint.calls == ["/auth/authorize", "/auth/refresh"]
    # A second task that used the same, now replaced, token: replay, no new refresh.
    assert await keeper.renew_after_401(generation)
    assert endpoint.calls == ["/auth/authorize", "/auth/refresh"]


async def test_cancelled_refresh_leaves_nothing_locked() -> None:
    endpoint = AuthEndpoint()
    endpoint.delay = 10
    keeper = JwtKeeper(ApiKey("k", "s"), endpoint)
    with anyio.move_on_after(0.05):
        await keeper.authorization()
    endpoint.delay = 0
    with anyio.fail_after(1):
        assert await keeper.authorization() == ("Bearer access-2", 1)


async def test_an_answer_without_an_access_token_is_an_sdk_error() -> None:
    async def broken(path: str, payload: Mapping[str, Any]) -> Any:
        return {"token": "x"}

    keeper = JwtKeeper(ApiKey("k", "s"), broken)
    with pytest.raises(InvalidResponseError, match="accessToken"):
        await keeper.authorization()
