"""`ApiRequest.on_answer`: every answer is seen, including those `send` retries by itself."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from transactionlink_async import NotFoundError, OrganizationToken, RetryPolicy, TransactionLink
from transactionlink_async._request import ApiRequest
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio


async def test_the_observer_sees_each_attempts_answer() -> None:
    seen: list[tuple[int, str | None]] = []

    def observe(status: int, headers: Mapping[str, str]) -> None:
        seen.append((status, headers.get("Retry-After")))

    async with FakeTransactionLink() as fake:
        fake.inject("GET", "/workflows/*", status=429, retry_after="0.01")
        fake.inject("GET", "/workflows/*", status=503)
        async with TransactionLink(
            OrganizationToken(fake.org_token),
            base_url=fake.base_url,
            retry=RetryPolicy(backoff_base=0.01, max_attempts=3),
        ) as tl:
            with pytest.raises(NotFoundError):
                await tl.send(ApiRequest(method="GET", path="/workflows/x", on_answer=observe))
    assert seen == [(429, "0.01"), (503, None), (404, None)]
