"""A webhook's execution id and status are read from the same place in its payload."""

from __future__ import annotations

from typing import Any

import pytest

from transactionlink_async import TransactionLink, WorkflowStatus
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"data": {"workflowId": "w-1", "status": "COMPLETED"}}, WorkflowStatus.COMPLETED),
        ({"workflowExecution": {"executionId": "w-1", "status": "FAILED"}}, WorkflowStatus.FAILED),
        ({"execution": {"id": "w-1", "status": "AWAITING"}}, WorkflowStatus.AWAITING),
        ({"workflow": {"workflowId": "w-1", "status": "NEW_ONE"}}, "NEW_ONE"),
        # The status beside the id wins over another one elsewhere...
        ({"status": "RUNNING", "data": {"workflowId": "w-1", "status": "EXPIRED"}}, "EXPIRED"),
        ({"workflowId": "w-1", "status": "CANCELLED", "data": {"status": "RUNNING"}}, "CANCELLED"),
        # ...and the top level speaks for an object that has none.
        ({"status": "TIMEOUT", "data": {"workflowId": "w-1"}}, WorkflowStatus.TIMEOUT),
    ],
)
async def test_the_status_comes_from_beside_the_execution_id(
    fake: FakeTransactionLink, tl: TransactionLink, payload: dict[str, Any], status: Any
) -> None:
    headers, body = fake.webhooks.signed(payload)
    event = await tl.webhooks.verify(headers, body)
    assert event.execution_id == "w-1"
    assert event.status == status
