"""The fake's webhook side: the key endpoint, signing variants, vendor-like retries, events."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import anyio
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio


@pytest.fixture
async def fake() -> AsyncIterator[FakeTransactionLink]:
    async with FakeTransactionLink() as server:
        server.webhooks.retry_interval = 0.05
        yield server


class Receiver:
    """A webhook receiver answering scripted statuses (204 once the script runs out)."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.delay = 0.0
        self.received: list[tuple[dict[str, str], bytes, float]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read(), time.monotonic()))
        if self.delay:
            await anyio.sleep(self.delay)
        return web.Response(status=self.statuses.pop(0) if self.statuses else 204)


async def until(condition: Callable[[], bool], within: float = 2.0) -> None:
    """Wait for a condition on state that offers no event to wait on."""
    with anyio.fail_after(within):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.01)


@asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


async def get_key(
    fake: FakeTransactionLink, kid: str, query: str, auth: bool = True
) -> tuple[int, str, str]:
    headers = {"Authorization": fake.org_token} if auth else {}
    async with aiohttp.ClientSession() as session:
        url = f"{fake.base_url}/auth/webhooks/key/{kid}{query}"
        async with session.get(url, headers=headers) as response:
            return response.status, response.content_type, await response.text()


async def test_the_key_endpoint_serves_pem_and_bare_base64_der(fake: FakeTransactionLink) -> None:
    kid = fake.webhooks.kid
    status, content_type, pem = await get_key(fake, kid, "?pem=true")
    assert (status, content_type) == (200, "text/plain")
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    status, content_type, bare = await get_key(fake, kid, "?pem=false")
    assert (status, content_type) == (200, "text/plain")
    from_pem = serialization.load_pem_public_key(pem.encode())
    from_der = serialization.load_der_public_key(base64.b64decode(bare))
    assert isinstance(from_pem, rsa.RSAPublicKey)
    assert isinstance(from_der, rsa.RSAPublicKey)
    assert from_pem.public_numbers() == from_der.public_numbers()
    assert from_pem.key_size == 2048


async def test_the_key_endpoint_enforces_auth_and_knows_its_kids(fake: FakeTransactionLink) -> None:
    kid = fake.webhooks.kid
    assert (await get_key(fake, kid, "?pem=true", auth=False))[0] == 401
    status, _, body = await get_key(fake, "00000000-0000-0000-0000-000000000000", "?pem=true")
    assert status == 404
    assert "fingerprint" in json.loads(body)
    assert (await get_key(fake, kid, "?pem=maybe"))[0] == 400


async def test_rotation_adds_a_kid_and_retiring_removes_one(fake: FakeTransactionLink) -> None:
    first = fake.webhooks.kid
    second = fake.webhooks.rotate_key()
    assert second != first
    assert fake.webhooks.kid == second
    assert (await get_key(fake, first, "?pem=true"))[0] == 200
    fake.webhooks.retire_key(first)
    assert (await get_key(fake, first, "?pem=true"))[0] == 404
    assert (await get_key(fake, second, "?pem=true"))[0] == 200


async def test_signatures_are_rs256_over_the_header_and_the_encoded_body(
    fake: FakeTransactionLink,
) -> None:
    headers, body = fake.webhooks.signed({"workflowId": "w"})
    head, middle, signature = headers["JWS-SIGNATURE"].split(".")
    assert middle == ""
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    assert header == {"alg": "RS256", "kid": fake.webhooks.kid, "typ": "JWT"}
    public = fake.webhooks.keyring.private_key().public_key()
    payload = base64.urlsafe_b64encode(body).rstrip(b"=")
    raw_signature = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    public.verify(
        raw_signature, head.encode() + b"." + payload, padding.PKCS1v15(), hashes.SHA256()
    )


async def test_the_forged_variants_look_like_their_attacks(fake: FakeTransactionLink) -> None:
    def header_of(value: str) -> dict[str, object]:
        head = value.split(".")[0]
        parsed: dict[str, object] = json.loads(
            base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
        )
        return parsed

    payload = {"workflowId": "w", "status": "COMPLETED"}
    assert "JWS-SIGNATURE" not in fake.webhooks.signed(payload, "unsigned")[0]
    none = fake.webhooks.signed(payload, "alg_none")[0]["JWS-SIGNATURE"]
    assert header_of(none)["alg"] == "none"
    assert none.endswith("..")
    hs_headers, hs_body = fake.webhooks.signed(payload, "hs256")
    value = hs_headers["JWS-SIGNATURE"]
    head, _, mac = value.split(".")
    expected = hmac.new(
        fake.webhooks.public_key_pem.encode(),
        head.encode() + b"." + base64.urlsafe_b64encode(hs_body).rstrip(b"="),
        hashlib.sha256,
    ).digest()
    assert base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4)) == expected
    assert header_of(fake.webhooks.signed(payload, "unknown_kid")[0]["JWS-SIGNATURE"])["kid"] != (
        fake.webhooks.kid
    )
    _, tampered_body = fake.webhooks.signed(payload, "tampered")
    assert tampered_body != json.dumps(payload).encode()
    unencoded = header_of(fake.webhooks.signed(payload, "b64_false")[0]["JWS-SIGNATURE"])
    assert unencoded["b64"] is False
    assert unencoded["crit"] == ["b64"]
    with pytest.raises(ValueError, match="unknown delivery variant"):
        fake.webhooks.signed(payload, "bogus")  # type: ignore[arg-type]


async def test_the_sender_retries_non_2xx_like_the_vendor(fake: FakeTransactionLink) -> None:
    receiver = Receiver()
    receiver.statuses = [500, 400, 503]
    async with receiving(receiver) as url:
        delivery = await fake.webhooks.send(url, {"workflowId": "w"})
    assert [a.status for a in delivery.attempts] == [500, 400, 503, 204]
    assert delivery.delivered
    gaps = [b[2] - a[2] for a, b in zip(receiver.received, receiver.received[1:], strict=False)]
    assert all(gap >= 0.05 for gap in gaps)
    # Every attempt carries the same signed bytes.
    assert len({(h["JWS-SIGNATURE"], body) for h, body, _ in receiver.received}) == 1


async def test_the_sender_gives_up_after_five_retries(fake: FakeTransactionLink) -> None:
    receiver = Receiver()
    receiver.statuses = [500] * 10
    async with receiving(receiver) as url:
        delivery = await fake.webhooks.send(url, {"workflowId": "w"})
    assert [a.status for a in delivery.attempts] == [500] * 6
    assert not delivery.delivered


async def test_a_slow_receiver_times_out_and_is_retried(fake: FakeTransactionLink) -> None:
    receiver = Receiver()
    receiver.delay = 5.0
    fake.webhooks.timeout = 0.2
    async with receiving(receiver) as url:
        delivery = await fake.webhooks.send(url, {"workflowId": "w"}, retries=1)
    assert [a.status for a in delivery.attempts] == [None, None]
    assert delivery.attempts[0].error == "TimeoutError"


async def test_subscribers_get_final_and_awaiting_events_once(fake: FakeTransactionLink) -> None:
    receiver = Receiver()
    fake.define_workflow("kyc", statuses=("RUNNING", "AWAITING", "COMPLETED"), name="KYC check")
    async with receiving(receiver) as url:
        fake.webhooks.subscribe(url)
        async with aiohttp.ClientSession(headers={"Authorization": fake.org_token}) as session:
            async with session.post(
                f"{fake.base_url}/workflows",
                json={"workflowDefinitionId": "kyc", "locale": "en", "parameters": {}},
            ) as response:
                execution_id = (await response.json())["id"]
            for _ in range(5):  # RUNNING, AWAITING, COMPLETED, then COMPLETED again
                async with session.get(f"{fake.base_url}/workflows/{execution_id}") as response:
                    await response.read()
        await until(lambda: len(fake.webhooks.deliveries) == 2)
        await fake.webhooks.drain()
    events = [json.loads(body) for _, body, _ in receiver.received]
    assert events == [
        {
            "workflowId": execution_id,
            "status": status,
            "referenceName": "KYC check",
            "workflowDefinitionId": "kyc",
        }
        for status in ("AWAITING", "COMPLETED")
    ]


async def test_clock_driven_progress_and_cancels_are_announced(fake: FakeTransactionLink) -> None:
    receiver = Receiver()
    fake.define_workflow("timed", statuses=("RUNNING", "FAILED"), seconds_per_status=0.05)
    async with receiving(receiver) as url:
        fake.webhooks.subscribe(url)
        async with aiohttp.ClientSession(headers={"Authorization": fake.org_token}) as session:
            ids = []
            for _ in range(2):
                async with session.post(
                    f"{fake.base_url}/workflows",
                    json={"workflowDefinitionId": "timed", "locale": "en", "parameters": {}},
                ) as response:
                    ids.append((await response.json())["id"])
            async with session.post(f"{fake.base_url}/workflows/{ids[1]}/cancel") as response:
                assert response.status == 200
        await until(lambda: len(receiver.received) >= 2)
        await fake.webhooks.drain()
    seen = {
        (e["workflowId"], e["status"]) for e in (json.loads(b) for _, b, _ in receiver.received)
    }
    assert seen == {(ids[0], "FAILED"), (ids[1], "CANCELLED")}


async def test_closing_the_fake_stops_pending_deliveries_at_once() -> None:
    receiver = Receiver()
    receiver.delay = 30.0
    async with receiving(receiver) as url:
        async with FakeTransactionLink() as fake:
            delivery = fake.webhooks.send_soon(url, {"workflowId": "w"})
            await until(lambda: bool(receiver.received))
            started = time.monotonic()
        assert time.monotonic() - started < 1.0
        assert delivery.done.is_set()
        assert not delivery.delivered


#: Run in its own process: a drain that spins never yields, so only a kill can end it.
DRAIN_JUST_AFTER_A_DELIVERY = """
import asyncio
from aiohttp import web
from transactionlink_async.testing import FakeTransactionLink

async def main() -> None:
    app = web.Application()
    app.router.add_post("/hook", lambda request: web.Response(status=204))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    async with FakeTransactionLink() as fake:
        for _ in range(20):
            delivery = fake.webhooks.send_soon(url, {"workflowId": "w-1"})
            # Woken as the delivery ends: its task is done, its done-callbacks not yet run.
            await delivery.done.wait()
            await fake.webhooks.drain()
    await runner.cleanup()
    print("drained")

asyncio.run(main())
"""


def test_drain_returns_when_the_last_delivery_has_only_just_finished() -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(  # noqa: S603 - this interpreter and our own script
        [sys.executable, "-c", DRAIN_JUST_AFTER_A_DELIVERY],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.stdout.strip() == "drained", done.stderr
