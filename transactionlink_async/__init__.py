"""transactionlink_async: the asyncio SDK for the TransactionLink workflow API."""

import logging as _logging

from ._auth import ApiKey, Credentials, OrganizationToken
from ._batches.launch import LaunchBatch
from ._batches.wait import WaitBatch
from ._client import DEFAULT_BASE_URL, ClientOptions, TransactionLink
from ._download.results import DownloadedResult, ProgressCallback, ResultStream
from ._observe.events import Events, RequestEvent, ResponseEvent
from ._ratelimit import RateLimit
from ._retry import PollPolicy, RetryPolicy
from ._session import Timeouts
from ._version import __version__
from ._webhooks.receive import WebhookEvent, Webhooks
from .errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    InvalidResponseError,
    LaunchInDoubtError,
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
    UnknownStatus,
    WorkflowExecution,
    WorkflowStatus,
    is_final_status,
)
from .resources import Cases, Workflows
from .resources import Parameters as ParametersResource
from .resources.raw import APIResponse, RawCases, RawParameters, RawResources, RawWorkflows

__all__ = [
    "DEFAULT_BASE_URL",
    "APIError",
    "APIResponse",
    "ApiKey",
    "AuthenticationError",
    "BadRequestError",
    "Case",
    "CaseDocument",
    "Cases",
    "ClientClosedError",
    "ClientOptions",
    "Credentials",
    "DownloadedResult",
    "ErrorDetail",
    "Events",
    "InvalidResponseError",
    "LaunchBatch",
    "LaunchInDoubtError",
    "LaunchOutcome",
    "LaunchRequest",
    "NotFoundError",
    "OrganizationToken",
    "Parameters",
    "ParametersResource",
    "PartyDetails",
    "PermissionDeniedError",
    "Phone",
    "PollPolicy",
    "ProgressCallback",
    "RateLimit",
    "RateLimitError",
    "RawCases",
    "RawParameters",
    "RawResources",
    "RawWorkflows",
    "RequestEvent",
    "ResponseEvent",
    "ResultDownloadError",
    "ResultStream",
    "ResultTooLargeError",
    "RetryPolicy",
    "ServerError",
    "Timeouts",
    "TransactionLink",
    "TransactionLinkError",
    "TransportError",
    "UnknownStatus",
    "WaitBatch",
    "WaitTimeoutError",
    "WebhookEvent",
    "WebhookKeyUnavailableError",
    "WebhookVerificationError",
    "Webhooks",
    "WorkflowExecution",
    "WorkflowStatus",
    "Workflows",
    "__version__",
    "is_final_status",
]

# A library stays silent until the application configures logging: without a handler of
# its own, Python's last-resort handler would print the SDK's warnings on stderr.
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
