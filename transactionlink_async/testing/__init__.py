"""A fake TransactionLink API server for tests, demos and benchmarks."""

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
