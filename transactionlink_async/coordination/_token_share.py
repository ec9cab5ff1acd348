"""One access token for every process sharing the credentials: adopt it, or renew it for all.

Renewal is single flight across processes: whoever takes the lease renews (refresh tokens
may be single-use, so two processes must never spend the same one) while the others wait
for the new token. The lease is kept alive while the renewal runs, and lapses by itself if
its holder dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

import anyio
import attrs

from ._guard import CoordinationUnavailable
from ._tasks import cancel_and_wait

__all__ = [
    "FreshToken",
    "SharedToken",
    "StoreView",
    "TokenShare",
    "TokenStore",
    "usable",
]

#: How long a renewal lease lives without being extended: the longest the others wait
#: should its holder die mid-renewal.
DEFAULT_LEASE = 5.0

#: Renew this long before expiry (or half the lifetime, for short-lived tokens); the token
#: keeper passes its own margin.
DEFAULT_MARGIN = 60.0


@attrs.frozen
class SharedToken:
    """An access token as the store holds it (or as this process alone got it)."""

    access: str = attrs.field(repr=False)
    refresh: str | None = attrs.field(repr=False)
    #: Its place in the store's sequence; None for a token the store could not take.
    generation: int | None
    #: Seconds it has left, as of the read (None: not known, renew on a 401 only).
    expires_in: float | None
    #: Seconds it lived in all (None: not known).
    lifetime: float | None


@attrs.frozen
class FreshToken:
    """What a renewal got from the API."""

    access: str = attrs.field(repr=False)
    refresh: str | None = attrs.field(repr=False)
    lifetime: float | None
    #: When it was obtained, on the monotonic clock.
    obtained: float


@attrs.frozen
class StoreView:
    """One read of the store: the current generation and token, and any renewal under way."""

    generation: int
    #: None when there is none, or when it cannot be read (sealed with other credentials).
    token: SharedToken | None
    #: Seconds left of the lease of a renewal under way somewhere (None: no renewal).
    lease_left: float | None


class TokenStore(Protocol):
    """Where processes keep the shared token. Each call may raise CoordinationUnavailable."""

    async def read(self) -> StoreView: ...

    async def acquire(self, lease: float) -> str | None:
        """Take the renewal lease for `lease` seconds: an owner id, or None if taken."""
        ...

    async def extend(self, owner: str, lease: float) -> bool: ...

    async def publish(self, owner: str, expected: int, token: FreshToken) -> int | None:
        """Store `token` over generation `expected`: the new generation, or None if refused."""
        ...

    async def release(self, owner: str) -> None: ...


#: Renews from the API: given the shared refresh token (None: authorize with key and secret).
Fetch = Callable[[str | None], Awaitable[FreshToken]]


def usable(token: SharedToken | None, *, refused: str | None, margin: float) -> bool:
    """Whether a token from the store may be used now instead of renewing.

    Not the one the API just refused (the 401 rule across processes: a token another
    process already replaced is adopted, one still current is renewed), and not within the
    renewal margin of its expiry.
    """
    if token is None or (refused is not None and token.access == refused):
        return False
    if token.expires_in is None:
        return True
    lifetime = token.lifetime if token.lifetime is not None else token.expires_in
    return token.expires_in - min(margin, lifetime / 2) > 0


class TokenShare:
    """The shared-token steps for one set of credentials, over a TokenStore."""

    def __init__(
        self,
        store: TokenStore,
        *,
        lease: float = DEFAULT_LEASE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._lease = lease
        self._clock = clock

    async def get(
        self, fetch: Fetch, *, refused: str | None = None, margin: float = DEFAULT_MARGIN
    ) -> SharedToken:
        """A token to use now: the shared one if usable, else one renewal for everyone.

        `refused` is the access token the API just answered 401 to, if any. Raises
        CoordinationUnavailable when Redis fails before anything was fetched (the caller
        then renews on its own); once a token was fetched it is returned even if it could
        not be shared. Errors of `fetch` propagate.
        """
        pause = 0.005
        while True:
            view = await self._store.read()
            if usable(view.token, refused=refused, margin=margin):
                assert view.token is not None
                return view.token
            owner = await self._store.acquire(self._lease)
            if owner is not None:
                return await self._renew(owner, fetch, refused=refused, margin=margin)
            # Someone renews: wait for their token instead of spending the refresh token too.
            # Short pauses (a renewal takes one API round trip), never past their lease.
            left = view.lease_left if view.lease_left is not None else pause
            await anyio.sleep(max(0.001, min(pause, left)))
            pause = min(pause * 2, 0.1)

    async def _renew(
        self, owner: str, fetch: Fetch, *, refused: str | None, margin: float
    ) -> SharedToken:
        try:
            # Another renewal may have ended between our read and taking the lease.
            view = await self._store.read()
            if usable(view.token, refused=refused, margin=margin):
                assert view.token is not None
                return view.token
            async with self._kept_alive(owner):
                fresh = await fetch(view.token.refresh if view.token is not None else None)
            try:
                generation = await self._store.publish(owner, view.generation, fresh)
            except CoordinationUnavailable:
                generation = None
            return self._as_shared(fresh, generation)
        finally:
            # Shielded: a cancelled renewal must not leave the others waiting for the lease.
            with anyio.CancelScope(shield=True), contextlib.suppress(CoordinationUnavailable):
                await self._store.release(owner)

    def _as_shared(self, fresh: FreshToken, generation: int | None) -> SharedToken:
        left = None
        if fresh.lifetime is not None:
            left = fresh.lifetime - (self._clock() - fresh.obtained)
        return SharedToken(
            access=fresh.access,
            refresh=fresh.refresh,
            generation=generation,
            expires_in=left,
            lifetime=fresh.lifetime,
        )

    @contextlib.asynccontextmanager
    async def _kept_alive(self, owner: str) -> AsyncIterator[None]:
        """Extend the lease while the block runs (an API call may take longer than a lease)."""
        task = asyncio.get_running_loop().create_task(self._extend_forever(owner))
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                await cancel_and_wait(task)
            if not task.cancelled():
                task.result()  # a failure to keep the lease is not hidden

    async def _extend_forever(self, owner: str) -> None:
        every = self._lease / 3
        while True:
            await anyio.sleep(every)
            with contextlib.suppress(CoordinationUnavailable):
                if not await self._store.extend(owner, self._lease):
                    return  # lost (it lapsed): publishing will be refused, nothing to keep
