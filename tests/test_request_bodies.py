"""One rule for every request body: deep, cyclic and datetime-holding ones alike."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pytest

from transactionlink_async import (
    OrganizationToken,
    TransactionLink,
)
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio

Send = Callable[[TransactionLink, dict[str, Any]], Coroutine[Any, Any, Any]]


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def cyclic() -> dict[str, Any]:
    value: dict[str, Any] = {"name": "loop"}
    value["self"] = {"back": value}
    return value


async def initialise(tl: TransactionLink, parameters: dict[str, Any]) -> Any:
    return await tl.workflows.initialise(
        workflow_definition_id="d", locale="en", parameters=parameters
    )


async def create_parameters(tl: TransactionLink, parameters: dict[str, Any]) -> Any:
    return await tl.parameters.create(parameters)


SENDERS = [
    pytest.param(initialise, id="initialise"),
    pytest.param(create_parameters, id="parameters.create"),
]


def client(fake: FakeTransactionLink) -> TransactionLink:
    return TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url)


@pytest.mark.parametrize("send", SENDERS)
@pytest.mark.parametrize(
    ("parameters", "error", "says"),
    [
        ({"when": datetime(2026, 5, 1, 12, 0)}, ValueError, "naive datetime"),
        ({"x": float("nan")}, ValueError, "not valid JSON"),
        ({"x": {1, 2}}, TypeError, "set is not JSON serializable"),
    ],
    ids=["naive-datetime", "nan", "set"],
)
async def test_a_body_that_cannot_be_sent_is_refused_before_sending(
    fake: FakeTransactionLink, send: Send, parameters: Any, error: type[Exception], says: str
) -> None:
    async with client(fake) as tl:
        with pytest.raises(error, match=says):
            await send(tl, parameters)
    assert fake.journal == []


@pytest.mark.parametrize("send", SENDERS)
async def test_every_body_takes_aware_datetimes_and_any_mapping(
    fake: FakeTransactionLink, send: Send
) -> None:
    paris = timezone(timedelta(hours=2))
    parameters = {
        "when": datetime(2026, 5, 1, 14, 30, tzinfo=paris),
        "deep": {"list": [datetime(2026, 1, 1, tzinfo=timezone.utc)]},
        "frozen": MappingProxyType({"k": 1}),
        "fine": nested(200),
    }
    async with client(fake) as tl:
        await send(tl, parameters)
    (entry,) = [e for e in fake.journal if e.method == "POST"]
    sent = entry.json()
    sent = sent.get("parameters", sent)
    assert sent["when"] == "2026-05-01T12:30:00Z"
    assert sent["deep"] == {"list": ["2026-01-01T00:00:00Z"]}
    assert sent["frozen"] == {"k": 1}
    assert sent["fine"] == nested(200)
