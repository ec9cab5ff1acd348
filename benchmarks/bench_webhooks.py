"""Webhook verification: `tl.webhooks.verify` with a warm key cache versus raw cryptography."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from transactionlink_async import OrganizationToken, TransactionLink
from transactionlink_async.testing import FakeTransactionLink, WebhookSender

from ._harness import compare


def _payload(n: int, size: int) -> dict[str, Any]:
    event: dict[str, Any] = {
        "workflowId": f"0b6c7a52-6d1e-4c3a-9f0e-{n:012d}",
        "status": "COMPLETED",
        "referenceName": "kyc-onboarding",
    }
    padding_needed = size - len(json.dumps(event))
    if padding_needed > 0:
        event["data"] = {"note": "x" * padding_needed}
    return event


def _deliveries(sender: WebhookSender, count: int, size: int) -> list[tuple[dict[str, str], bytes]]:
    return [sender.signed(_payload(n, size)) for n in range(count)]


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def sdk(count: int, repeat: int, size: int) -> dict[str, Any]:
    """tl.webhooks.verify: header parsing and checks, cached key, RS256, event parsing."""
    async with FakeTransactionLink() as fake:
        deliveries = _deliveries(fake.webhooks, count, size)
        async with TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url) as tl:
            await tl.webhooks.verify(*deliveries[0])  # warm the key cache
            started = time.perf_counter()
            for _ in range(repeat):
                for headers, body in deliveries:
                    await tl.webhooks.verify(headers, body)
            elapsed = time.perf_counter() - started
            assert tl.webhooks.key_fetches == 1
    return {"rate": count * repeat / elapsed}


async def cryptography_bound(count: int, repeat: int, size: int) -> dict[str, Any]:
    """Only `RSAPublicKey.verify` over precomputed signing inputs: nothing can be faster."""
    async with FakeTransactionLink() as fake:
        deliveries = _deliveries(fake.webhooks, count, size)
        key = fake.webhooks.keyring.private_key().public_key()
    prepared = []
    for headers, body in deliveries:
        head, _, encoded = headers["JWS-SIGNATURE"].split(".")
        data = head.encode() + b"." + base64.urlsafe_b64encode(body).rstrip(b"=")
        prepared.append((_b64url_decode(encoded), data))
    pkcs1v15, sha256 = padding.PKCS1v15(), hashes.SHA256()
    started = time.perf_counter()
    for _ in range(repeat):
        for signature, data in prepared:
            key.verify(signature, data, pkcs1v15, sha256)
    elapsed = time.perf_counter() - started
    return {"rate": count * repeat / elapsed}


async def handwritten(count: int, repeat: int, size: int) -> dict[str, Any]:
    """What a user might write with cryptography alone: split, decode, verify, parse."""
    async with FakeTransactionLink() as fake:
        deliveries = _deliveries(fake.webhooks, count, size)
        key = fake.webhooks.keyring.private_key().public_key()
    pkcs1v15, sha256 = padding.PKCS1v15(), hashes.SHA256()
    started = time.perf_counter()
    for _ in range(repeat):
        for headers, body in deliveries:
            head, _, signature = headers["JWS-SIGNATURE"].split(".")
            header = json.loads(_b64url_decode(head))
            assert header["alg"] == "RS256"
            data = head.encode() + b"." + base64.urlsafe_b64encode(body).rstrip(b"=")
            key.verify(_b64url_decode(signature), data, pkcs1v15, sha256)
            json.loads(body)
    elapsed = time.perf_counter() - started
    return {"rate": count * repeat / elapsed}


def main(quick: bool = False) -> None:
    rounds = 1 if quick else 3
    for label, size, count, repeat in (
        ("small", 200, 500, 4 if quick else 20),
        ("64k", 64 * 1024, 200, 2 if quick else 10),
    ):
        kwargs = {"count": count, "repeat": repeat, "size": size}
        compare(
            f"webhooks_verify_{label}",
            {
                "sdk": ("benchmarks.bench_webhooks:sdk", kwargs),
                "cryptography": ("benchmarks.bench_webhooks:cryptography_bound", kwargs),
                "handwritten": ("benchmarks.bench_webhooks:handwritten", kwargs),
            },
            rounds=rounds,
            metric="rate",
            unit="verifications/s",
        )
