"""The shared token in Redis: sealed with the credentials, stored only by the lease's owner."""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._crypto import CredentialKeys
from ._guard import CoordinationUnavailable, Guard
from ._keys import Keys
from ._scripts import LEASE_EXTEND, LEASE_RELEASE, READ_SHARED, STORE_SHARED
from ._token_share import FreshToken, SharedToken, StoreView

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisTokenStore", "parse_view"]

#: The entry outlives its access token (its refresh token may still serve), but not forever.
_KEEP_MS = 24 * 3600 * 1000


def _millis(seconds: float | None) -> str:
    return "none" if seconds is None else str(max(1, math.ceil(seconds * 1000)))


def _seconds(raw: bytes) -> float | None:
    return None if raw == b"none" else int(raw) / 1000


def _context(key: str, generation: int) -> bytes:
    # Binds a sealed token to its entry and generation: no replaying an old one as current.
    return f"{key}#{generation}".encode()


def parse_view(raw: Sequence[Any], *, keys: CredentialKeys, key: str) -> StoreView:
    """The store's answer to READ_SHARED as a StoreView; an unreadable token reads as none."""
    generation = int(raw[0])
    lease_ms = int(raw[4])
    lease_left = lease_ms / 1000 if lease_ms > 0 else None
    token = None
    opened = keys.open(bytes(raw[1]), _context(key, generation)) if raw[1] else None
    if opened is not None:
        try:
            plain = json.loads(opened)
            access, refresh = plain["a"], plain["r"]
        except (ValueError, KeyError, TypeError):
            access = None
        if isinstance(access, str) and (refresh is None or isinstance(refresh, str)):
            token = SharedToken(
                access=access,
                refresh=refresh,
                generation=generation,
                expires_in=_seconds(bytes(raw[2])),
                lifetime=_seconds(bytes(raw[3])),
            )
    return StoreView(generation=generation, token=token, lease_left=lease_left)


class RedisTokenStore:
    """A TokenStore for one set of credentials; every call goes through the backend's guard."""

    def __init__(
        self,
        client: Redis,
        guard: Guard,
        keys: Keys,
        credentials: CredentialKeys,
        *,
        on_use: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_use = on_use
        self._guard = guard
        self._credentials = credentials
        self._clock = clock
        self._key = keys.token(credentials.name)
        self._lease_key = keys.token_lease(credentials.name)
        self._read = client.register_script(READ_SHARED)
        self._store = client.register_script(STORE_SHARED)
        self._extend = client.register_script(LEASE_EXTEND)
        self._release = client.register_script(LEASE_RELEASE)
        self._client = client

    async def read(self) -> StoreView:
        self._on_use()
        raw = await self._guard.call(
            "reading the shared token",
            lambda: self._read(keys=[self._key, self._lease_key], args=[]),
        )
        try:
            return parse_view(raw, keys=self._credentials, key=self._key)
        except (ValueError, TypeError, IndexError) as exc:
            # Not written by us (or by another version): renew on our own, leave it be.
            raise CoordinationUnavailable("the shared token entry is unreadable") from exc

    async def acquire(self, lease: float) -> str | None:
        owner = secrets.token_hex(16)
        taken = await self._guard.call(
            "taking the token renewal lease",
            lambda: self._client.set(
                self._lease_key, owner, nx=True, px=max(1, math.ceil(lease * 1000))
            ),
        )
        return owner if taken else None

    async def extend(self, owner: str, lease: float) -> bool:
        extended = await self._guard.call(
            "extending the token renewal lease",
            lambda: self._extend(keys=[self._lease_key], args=[owner, _millis(lease)]),
        )
        return bool(extended)

    async def publish(self, owner: str, expected: int, token: FreshToken) -> int | None:
        generation = expected + 1
        plain = json.dumps({"a": token.access, "r": token.refresh}).encode()
        sealed = self._credentials.seal(plain, _context(self._key, generation))
        left = None
        if token.lifetime is not None:
            left = token.lifetime - (self._clock() - token.obtained)
        keep = max(_KEEP_MS, 0 if left is None else int(left * 1000) + _KEEP_MS)
        stored = await self._guard.call(
            "storing the renewed token",
            lambda: self._store(
                keys=[self._key, self._lease_key],
                args=[
                    owner,
                    str(expected),
                    sealed,
                    _millis(left),
                    _millis(token.lifetime),
                    str(keep),
                ],
            ),
        )
        return generation if int(stored) == generation else None

    async def release(self, owner: str) -> None:
        await self._guard.call(
            "releasing the token renewal lease",
            lambda: self._release(keys=[self._lease_key], args=[owner]),
        )
