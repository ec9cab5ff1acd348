"""The fake's webhooks: RS256 signing keys by kid, and a sender that delivers like the vendor."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import io
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import aiohttp

from ._workflows import FINAL_STATUSES

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

__all__ = [
    "EVENT_STATUSES",
    "ChangeFeed",
    "Delivery",
    "DeliveryAttempt",
    "Keyring",
    "Variant",
    "WebhookSender",
]

#: The statuses whose arrival a subscribed URL is told about (completed, awaiting, ...).
EVENT_STATUSES = FINAL_STATUSES | {"AWAITING"}

#: How a delivery is signed: "valid", or one of the ways a forged or broken one looks.
Variant = Literal[
    "valid", "b64_false", "tampered", "unsigned", "alg_none", "hs256", "unknown_kid", "garbage"
]

# RSA key generation takes a noticeable fraction of a second: every fake in a process
# shares the same few keys (each fake gives them its own kids).
_KEY_POOL: list[RSAPrivateKey] = []


def _pool_key(index: int) -> RSAPrivateKey:
    try:
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError as exc:
        raise ImportError(
            "the fake's webhook sender needs cryptography: "
            "pip install 'cryptography>=42' (a dependency of transactionlink-async)"
        ) from exc
    while len(_KEY_POOL) <= index:
        _KEY_POOL.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _KEY_POOL[index]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _protected(header: Mapping[str, Any]) -> str:
    return _b64url(json.dumps(header, separators=(",", ":")).encode())


def _rs256(key: RSAPrivateKey, data: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


class Keyring:
    """The signing keys by kid; the newest signs, the older ones are still served."""

    def __init__(self) -> None:
        self._keys: dict[str, RSAPrivateKey] = {}
        self._current: str | None = None

    @property
    def kid(self) -> str:
        """The kid that signs now (the first key is made on first use)."""
        if self._current is None:
            self.rotate()
        assert self._current is not None
        return self._current

    def rotate(self) -> str:
        """Sign with a new key and kid from now on; returns the new kid."""
        kid = str(uuid.uuid4())
        self._keys[kid] = _pool_key(len(self._keys))
        self._current = kid
        return kid

    def retire(self, kid: str) -> None:
        """Stop serving `kid` (its key endpoint answers 404 from now on)."""
        self._keys.pop(kid, None)
        if self._current == kid:
            self._current = None

    def private_key(self, kid: str | None = None) -> RSAPrivateKey:
        return self._keys[kid or self.kid]

    def public_key_text(self, kid: str, *, pem: bool) -> str | None:
        """The public key as PEM, or as bare base64 DER; None for an unknown kid."""
        from cryptography.hazmat.primitives import serialization

        key = self._keys.get(kid)
        if key is None:
            return None
        public = key.public_key()
        if pem:
            return public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode("ascii")
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode("ascii")


class ChangeFeed(Protocol):
    """What the sender asks the fake API to announce changes without scanning everything."""

    def current(self, execution_id: str) -> dict[str, Any] | None: ...

    def due_steps(self) -> list[str]: ...

    def next_step_at(self) -> float | None: ...

    def clock(self) -> float: ...


@dataclass
class DeliveryAttempt:
    """One POST of a delivery: the receiver's status (None: no answer) and timing."""

    status: int | None
    error: str | None
    started: float
    finished: float
    answer: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Delivery:
    """A webhook sent (or being sent) to `url`, with every attempt made."""

    url: str
    variant: str
    headers: dict[str, str]
    body: bytes
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def delivered(self) -> bool:
        return any(attempt.ok for attempt in self.attempts)


class WebhookSender:
    """Signs and sends webhook deliveries the way the vendor does.

    Like the vendor: POST with the raw JSON body and a detached RS256 `JWS-SIGNATURE`,
    a `timeout` per attempt (10 s), and up to `retries` more attempts (5), `retry_interval`
    seconds apart (5 s), while the answer is not 2xx. Tests shorten the interval.
    """

    def __init__(
        self,
        keyring: Keyring,
        snapshot: Callable[[], dict[str, dict[str, Any]]],
        *,
        retries: int = 5,
        retry_interval: float = 5.0,
        timeout: float = 10.0,
        watch_interval: float = 0.05,
        feed: ChangeFeed | None = None,
    ) -> None:
        self.keyring = keyring
        self.retries = retries
        self.retry_interval = retry_interval
        self.timeout = timeout
        self.watch_interval = watch_interval
        self.deliveries: list[Delivery] = []
        self._snapshot = snapshot
        # With a feed, only the executions said to have changed (and the clock-driven ones
        # whose step is due) are looked at: thousands of executions cost nothing per poll.
        self._feed = feed
        self._dirty: set[str] = set()
        self._scan_all = False
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._subscribers: dict[str, Variant] = {}
        self._seen: dict[str, str] = {}
        self._changed: asyncio.Event | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._closed = False

    # -- keys ----------------------------------------------------------------------------

    @property
    def kid(self) -> str:
        """The kid of the key that signs now."""
        return self.keyring.kid

    @property
    def public_key_pem(self) -> str:
        text = self.keyring.public_key_text(self.kid, pem=True)
        assert text is not None
        return text

    def rotate_key(self) -> str:
        """Sign with a new key (new kid) from now on; old kids stay served. Returns the kid."""
        return self.keyring.rotate()

    def retire_key(self, kid: str) -> None:
        """Stop serving `kid`: its key endpoint answers 404 from now on."""
        self.keyring.retire(kid)

    # -- signing -------------------------------------------------------------------------

    def sign(self, body: bytes, *, kid: str | None = None, b64: bool = True) -> str:
        """A valid detached JWS over `body` (RFC 7797 unencoded payload when b64=False)."""
        kid = kid or self.kid
        header: dict[str, Any] = {"alg": "RS256", "kid": kid, "typ": "JWT"}
        if not b64:
            header.update(b64=False, crit=["b64"])
        protected = _protected(header)
        payload = _b64url(body).encode("ascii") if b64 else body
        signature = _rs256(
            self.keyring.private_key(kid), protected.encode("ascii") + b"." + payload
        )
        return f"{protected}..{_b64url(signature)}"

    def signed(self, payload: Any, variant: Variant = "valid") -> tuple[dict[str, str], bytes]:
        """The headers and body of a delivery of `payload` (JSON, or bytes sent as they are)."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if variant == "valid":
            headers["JWS-SIGNATURE"] = self.sign(body)
        elif variant == "b64_false":
            headers["JWS-SIGNATURE"] = self.sign(body, b64=False)
        elif variant == "tampered":
            headers["JWS-SIGNATURE"] = self.sign(body)
            body = body.replace(b"COMPLETED", b"FAILED") if b"COMPLETED" in body else body + b" "
        elif variant == "unsigned":
            pass
        elif variant == "alg_none":
            headers["JWS-SIGNATURE"] = _protected({"alg": "none", "kid": self.kid}) + ".."
        elif variant == "hs256":
            # The classic key-confusion forgery: HMAC keyed with the public key's PEM.
            protected = _protected({"alg": "HS256", "kid": self.kid, "typ": "JWT"})
            data = protected.encode("ascii") + b"." + _b64url(body).encode("ascii")
            mac = hmac.new(self.public_key_pem.encode(), data, hashlib.sha256).digest()
            headers["JWS-SIGNATURE"] = f"{protected}..{_b64url(mac)}"
        elif variant == "unknown_kid":
            # Signed by a real key, under a kid nobody serves.
            signature = self.sign(body)
            protected = _protected({"alg": "RS256", "kid": str(uuid.uuid4()), "typ": "JWT"})
            headers["JWS-SIGNATURE"] = protected + ".." + signature.rsplit(".", 1)[1]
        elif variant == "garbage":
            headers["JWS-SIGNATURE"] = "not a signature"
        else:
            raise ValueError(f"unknown delivery variant {variant!r}")
        return headers, body

    # -- sending -------------------------------------------------------------------------

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the fake server is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def send(
        self,
        url: str,
        payload: Any,
        *,
        variant: Variant = "valid",
        retries: int | None = None,
        retry_interval: float | None = None,
    ) -> Delivery:
        """Deliver `payload` to `url`, retrying like the vendor; returns the finished record."""
        headers, body = self.signed(payload, variant)
        delivery = Delivery(url=url, variant=variant, headers=headers, body=body)
        self.deliveries.append(delivery)
        try:
            await self._deliver(delivery, retries, retry_interval)
        finally:
            delivery.done.set()
        return delivery

    def send_soon(self, url: str, payload: Any, *, variant: Variant = "valid") -> Delivery:
        """Start `send` in the background; wait on `delivery.done` or `drain()`."""
        headers, body = self.signed(payload, variant)
        delivery = Delivery(url=url, variant=variant, headers=headers, body=body)
        self.deliveries.append(delivery)

        async def run() -> None:
            try:
                await self._deliver(delivery, None, None)
            finally:
                delivery.done.set()

        self._spawn(run())
        return delivery

    async def _deliver(
        self, delivery: Delivery, retries: int | None, retry_interval: float | None
    ) -> None:
        session = self._get_session()
        retries = self.retries if retries is None else retries
        interval = self.retry_interval if retry_interval is None else retry_interval
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        for attempt in range(retries + 1):
            if attempt:
                await asyncio.sleep(interval)
            started = time.monotonic()
            # aiohttp warns about large bytes bodies blocking the loop; a buffer is streamed.
            data = delivery.body if len(delivery.body) <= 2**20 else io.BytesIO(delivery.body)
            try:
                async with session.post(
                    delivery.url, data=data, headers=delivery.headers, timeout=timeout
                ) as response:
                    answer = await response.read()
                    record = DeliveryAttempt(
                        response.status, None, started, time.monotonic(), answer
                    )
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                record = DeliveryAttempt(None, type(exc).__name__, started, time.monotonic())
            delivery.attempts.append(record)
            if record.ok:
                return

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every delivery started in the background has finished."""
        while self._tasks:
            tasks = list(self._tasks)
            await asyncio.gather(*tasks, return_exceptions=True)
            # On Python 3.12+ gather returns without yielding when every task is done, and
            # finished tasks leave the set from callbacks the loop has yet to run: forget
            # them here, or this loop would spin forever.
            self._tasks.difference_update(tasks)

    # -- automatic events ----------------------------------------------------------------

    def subscribe(self, url: str, *, variant: Variant = "valid") -> None:
        """Send an event to `url` whenever an execution reaches a final status or AWAITING.

        The event is `{"workflowId", "status", "referenceName", "workflowDefinitionId"}`.
        """
        self._subscribers[url] = variant
        if self._watcher is None:
            self._changed = asyncio.Event()
            # Executions already final when the subscription starts are not announced.
            self._seen = {eid: doc["status"] for eid, doc in self._snapshot().items()}
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    def unsubscribe(self, url: str) -> None:
        self._subscribers.pop(url, None)

    def status_may_have_changed(self, execution_id: str | None = None) -> None:
        """Called by the API on polls, cancels and set_status (with the execution's id, or
        None for "any"): look at once, not on the tick."""
        if self._changed is None:
            return
        if execution_id is None:
            self._scan_all = True
        else:
            self._dirty.add(execution_id)
        self._changed.set()

    async def _watch(self) -> None:
        assert self._changed is not None
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._next_look())
            self._changed.clear()
            if self._feed is None or self._scan_all:
                self._scan_all = False
                self._dirty.clear()
                self._announce_changes(self._snapshot().items())
            else:
                ids = self._dirty
                self._dirty = set()
                ids.update(self._feed.due_steps())
                documents = ((i, self._feed.current(i)) for i in ids)
                self._announce_changes((i, d) for i, d in documents if d is not None)

    def _next_look(self) -> float | None:
        """Seconds until the watcher must look without being told (None: only when told)."""
        if self._feed is None:
            return self.watch_interval
        next_step = self._feed.next_step_at()
        if next_step is None:
            return None
        # At most one tick ahead: the fake's clock may be a test's, not the loop's.
        return min(self.watch_interval, max(0.0, next_step - self._feed.clock()))

    def _announce_changes(self, documents: Iterable[tuple[str, dict[str, Any]]]) -> None:
        for execution_id, document in documents:
            status = document.get("status")
            if not isinstance(status, str) or self._seen.get(execution_id) == status:
                continue
            self._seen[execution_id] = status
            if status not in EVENT_STATUSES:
                continue
            event = {
                "workflowId": execution_id,
                "status": status,
                "referenceName": document.get("name"),
                "workflowDefinitionId": document.get("workflowDefinitionId"),
            }
            for url, variant in list(self._subscribers.items()):
                self.send_soon(url, event, variant=variant)

    async def aclose(self) -> None:
        """Stop watching and sending; close the sender's connections."""
        self._closed = True
        tasks = list(self._tasks)
        if self._watcher is not None:
            tasks.append(self._watcher)
            self._watcher = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()
