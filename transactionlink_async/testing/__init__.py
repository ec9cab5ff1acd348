"""A fake TransactionLink API server for tests, demos and benchmarks."""

from ._faults import FaultRule
from ._journal import JournalEntry
from ._server import FakeTransactionLink
from ._webhooks import Delivery, DeliveryAttempt, WebhookSender
from ._workflows import FINAL_STATUSES, WorkflowScript

__all__ = [
    "FINAL_STATUSES",
    "Delivery",
    "DeliveryAttempt",
    "FakeTransactionLink",
    "FaultRule",
    "JournalEntry",
    "WebhookSender",
    "WorkflowScript",
]
