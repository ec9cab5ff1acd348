"""transactionlink_async: the asyncio SDK for the TransactionLink workflow API."""

from ._auth import ApiKey, Credentials, OrganizationToken
from ._batches.launch import LaunchBatch
from ._batches.wait import WaitBatch
from ._client import DEFAULT_BASE_URL, TransactionLink
from ._download.results import DownloadedResult, ResultStream
from ._ratelimit import RateLimit
from ._retry import PollPolicy, RetryPolicy
from ._session import Timeouts
from ._version import __version__
from ._webhooks.receive import WebhookEvent
from .errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    InvalidResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResultDownloadError,
    ResultTooLargeError,
    ServerError,
    TransactionLinkError,
    TransportError,
    WaitTimeoutError,
    WebhookKeyUnavailableError,
    WebhookVerificationError,
)
from .models import (
    Case,
    CaseDocument,
    ErrorDetail,
    LaunchOutcome,
    LaunchRequest,
    Parameters,
    PartyDetails,
    Phone,
    WorkflowExecution,
    WorkflowStatus,
    is_final_status,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "APIError",
    "ApiKey",
    "AuthenticationError",
    "BadRequestError",
    "Case",
    "CaseDocument",
    "ClientClosedError",
    "Credentials",
    "DownloadedResult",
    "ErrorDetail",
    "InvalidResponseError",
    "LaunchBatch",
    "LaunchOutcome",
    "LaunchRequest",
    "NotFoundError",
    "OrganizationToken",
    "Parameters",
    "PartyDetails",
    "PermissionDeniedError",
    "Phone",
    "PollPolicy",
    "RateLimit",
    "RateLimitError",
    "ResultDownloadError",
    "ResultStream",
    "ResultTooLargeError",
    "RetryPolicy",
    "ServerError",
    "Timeouts",
    "TransactionLink",
    "TransactionLinkError",
    "TransportError",
    "WaitBatch",
    "WaitTimeoutError",
    "WebhookEvent",
    "WebhookKeyUnavailableError",
    "WebhookVerificationError",
    "WorkflowExecution",
    "WorkflowStatus",
    "__version__",
    "is_final_status",
]
