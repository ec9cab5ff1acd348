"""One pub/sub connection kept subscribed through Redis restarts (redis-py will not do it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ._breaker import BreakerPolicy
from ._guard import Guard
from ._tasks import cancel_and_wait

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

__all__ = ["Subscriber"]

logger = logging.getLogger("transactionlink_async")

#: A quiet connection is pinged after this many seconds, and given up after twice that:
#: a connection cut without a reset (a dead peer, a dropped route) never says it is gone.
KEEPALIVE = 5.0

#: Handlers get each message's data; they run on the loop, so they must be quick.
Handler = Callable[[bytes], None]

#: Called after each successful subscribe: True the first time, False after a reconnect
#: (news published meanwhile may have been missed).
OnSubscribed = Callable[[bool], Awaitable[None]]


class Subscriber:
    """Listens to `handlers`' channels in a background task until `aclose()`."""

    def __init__(
        self,
        client: Redis,
        guard: Guard,
        handlers: Mapping[str, Handler],
        *,
        on_subscribed: OnSubscribed,
        timeout: float,
        backoff: BreakerPolicy,
        keepalive: float = KEEPALIVE,
    ) -> None:
        self._client = client
        self._guard = guard
        self._handlers = {name.encode(): handler for name, handler in handlers.items()}
        self._on_subscribed = on_subscribed
        self._timeout = timeout
        self._backoff = backoff
        self._keepalive = keepalive
        self._task: asyncio.Task[None] | None = None
        self._subscribed = False

    @property
    def subscribed(self) -> bool:
        """Whether news from other processes reaches us now (and what was missed is caught up)."""
        return self._subscribed

    def start(self) -> None:
        """Start listening, once (needs a running loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)

    async def _run(self) -> None:
        first = True
        failures = 0
        while True:
            pubsub = self._client.pubsub()
            try:
                await self._subscribe(pubsub)
                failures = 0
                self._guard.succeeded()
                await self._on_subscribed(first)
                first = False
                # Only now: what was missed (news, pauses under way) has been caught up on.
                self._subscribed = True
                await self._listen(pubsub)
            except self._guard.failures as exc:
                self._guard.failed("listening for other processes' news", exc)
            except Exception:
                # A bug must not end the listening for good: logged, then as for a failure.
                logger.exception("the coordination subscriber failed; subscribing again")
            finally:
                self._subscribed = False
                with (
                    anyio.CancelScope(shield=True),
                    anyio.move_on_after(self._timeout),
                    contextlib.suppress(*self._guard.failures),
                ):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            failures += 1
            await anyio.sleep(self._backoff.cooldown(failures))

    async def _subscribe(self, pubsub: PubSub) -> None:
        """Subscribe, and return once Redis confirmed every channel."""
        with anyio.fail_after(self._timeout):
            await pubsub.subscribe(*self._handlers)
            pending = set(self._handlers)
            while pending:
                message = await pubsub.get_message(timeout=self._timeout)
                if message is None:
                    raise TimeoutError("no confirmation of the subscription")
                if message["type"] == "subscribe":
                    pending.discard(message["channel"])
                else:
                    self._dispatch(message)

    async def _listen(self, pubsub: PubSub) -> None:
        """Hand messages to their handlers; returns only by raising (connection lost)."""
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=self._keepalive)
            if message is None:
                if pinged:
                    raise TimeoutError("the pub/sub connection did not answer a ping")
                with anyio.fail_after(self._timeout):
                    await pubsub.ping()
                pinged = True
                continue
            pinged = False
            self._dispatch(message)

    def _dispatch(self, message: Mapping[str, Any]) -> None:
        if message.get("type") != "message":
            return
        handler = self._handlers.get(message.get("channel", b""))
        if handler is None:
            return
        try:
            handler(message["data"])
        except Exception:
            # Anyone with access to Redis can publish here: a bad message is dropped.
            logger.debug("ignored a coordination message that could not be read", exc_info=True)
