"""A fake TransactionLink API server for tests, demos and benchmarks.

Its names are imported on first use, so that the pytest plugin (which lives here) costs
nothing to load in test runs that do not use it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._faults import FaultRule
    from ._journal import JournalEntry
    from ._limits import AnswerDelay, RateLimitRule
    from ._s3 import FakeS3, S3Fault, S3Object, S3Request, S3Result
    from ._s3data import GeneratedJson
    from ._server import FakeTransactionLink
    from ._webhooks import Delivery, DeliveryAttempt, WebhookSender
    from ._workflows import FINAL_STATUSES, WorkflowScript

__all__ = [
    "FINAL_STATUSES",
    "AnswerDelay",
    "Delivery",
    "DeliveryAttempt",
    "FakeS3",
    "FakeTransactionLink",
    "FaultRule",
    "GeneratedJson",
    "JournalEntry",
    "RateLimitRule",
    "S3Fault",
    "S3Object",
    "S3Request",
    "S3Result",
    "WebhookSender",
    "WorkflowScript",
]

_WHERE = {
    "FINAL_STATUSES": "._workflows",
    "AnswerDelay": "._limits",
    "Delivery": "._webhooks",
    "DeliveryAttempt": "._webhooks",
    "FakeS3": "._s3",
    "FakeTransactionLink": "._server",
    "FaultRule": "._faults",
    "GeneratedJson": "._s3data",
    "JournalEntry": "._journal",
    "RateLimitRule": "._limits",
    "S3Fault": "._s3",
    "S3Object": "._s3",
    "S3Request": "._s3",
    "S3Result": "._s3",
    "WebhookSender": "._webhooks",
    "WorkflowScript": "._workflows",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # the next lookup is a plain one
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
