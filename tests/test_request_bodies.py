"""One rule for every request body: deep, cyclic and datetime-holding ones alike."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pytest

from transactionlink_async import (
    LaunchOutcome,
    LaunchRequest,
    OrganizationToken,
    TransactionLink,
)
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio

Send = Callable[[TransactionLink, dict[str, Any]], Coroutine[Any, Any, Any]]


#: Deeper than any recursion limit Python runs with (hypothesis raises it while it runs).
DEEP = 100_000


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
        (cyclic(), ValueError, "Circular reference"),
        (nested(DEEP), ValueError, "nested too deeply"),
        ({"when": datetime(2026, 5, 1, 12, 0)}, ValueError, "naive datetime"),
        ({"x": float("nan")}, ValueError, "not valid JSON"),
        ({"x": {1, 2}}, TypeError, "set is not JSON serializable"),
    ],
    ids=["cyclic", "deep", "naive-datetime", "nan", "set"],
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


async def test_in_a_batch_a_body_that_cannot_be_sent_is_one_outcome(
    fake: FakeTransactionLink,
) -> None:
    requests = [
        LaunchRequest(workflow_definition_id="d", locale="en", parameters={"n": 0}),
        LaunchRequest(workflow_definition_id="d", locale="en", parameters=cyclic()),
        LaunchRequest(workflow_definition_id="d", locale="en", parameters=nested(DEEP)),
        LaunchRequest(
            workflow_definition_id="d",
            locale="en",
            parameters={"when": datetime(2026, 5, 1, tzinfo=timezone.utc)},
        ),
    ]
    async with client(fake) as tl:
        outcomes: list[LaunchOutcome] = [
            o async for o in tl.workflows.launch_many(requests, concurrency=2)
        ]
    by_index = {o.index: o for o in outcomes}
    assert sorted(by_index) == [0, 1, 2, 3]
    assert by_index[0].ok
    assert by_index[3].ok
    assert isinstance(by_index[1].error, ValueError)
    assert isinstance(by_index[2].error, ValueError)
    assert len(fake.requests("POST", "/workflows")) == 2
