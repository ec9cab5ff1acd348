"""transactionlink_async: the asyncio SDK for the TransactionLink workflow API."""

# Public names are imported when first used, not with the package: a short-lived job or
# the command line pays only for what it touches (cattrs converters, webhook signature
# checks, downloads...). Type checkers see the names through the imports below.
from __future__ import annotations

import importlib
import logging as _logging
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._auth import ApiKey, Credentials, OrganizationToken
    from ._batches.launch import LaunchBatch
    from ._batches.wait import WaitBatch
    from ._client import DEFAULT_BASE_URL, ClientOptions, TransactionLink
    from ._download.results import DownloadedResult, ProgressCallback, ResultStream
    from ._observe.events import Events, RequestEvent, ResponseEvent
    from ._ratelimit import RateLimit
    from ._retry import PollPolicy, RetryPolicy
    from ._session import Timeouts
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

# Where each public name lives (module, name there), imported on first use.
_LOCATIONS = {
    "ApiKey": ("._auth", "ApiKey"),
    "Credentials": ("._auth", "Credentials"),
    "OrganizationToken": ("._auth", "OrganizationToken"),
    "LaunchBatch": ("._batches.launch", "LaunchBatch"),
    "WaitBatch": ("._batches.wait", "WaitBatch"),
    "DEFAULT_BASE_URL": ("._client", "DEFAULT_BASE_URL"),
    "ClientOptions": ("._client", "ClientOptions"),
    "TransactionLink": ("._client", "TransactionLink"),
    "RateLimit": ("._ratelimit", "RateLimit"),
    "DownloadedResult": ("._download.results", "DownloadedResult"),
    "ProgressCallback": ("._download.results", "ProgressCallback"),
    "ResultStream": ("._download.results", "ResultStream"),
    "Events": ("._observe.events", "Events"),
    "RequestEvent": ("._observe.events", "RequestEvent"),
    "ResponseEvent": ("._observe.events", "ResponseEvent"),
    "PollPolicy": ("._retry", "PollPolicy"),
    "RetryPolicy": ("._retry", "RetryPolicy"),
    "Timeouts": ("._session", "Timeouts"),
    "WebhookEvent": ("._webhooks.receive", "WebhookEvent"),
    "Webhooks": ("._webhooks.receive", "Webhooks"),
    "APIError": (".errors", "APIError"),
    "AuthenticationError": (".errors", "AuthenticationError"),
    "BadRequestError": (".errors", "BadRequestError"),
    "ClientClosedError": (".errors", "ClientClosedError"),
    "InvalidResponseError": (".errors", "InvalidResponseError"),
    "LaunchInDoubtError": (".errors", "LaunchInDoubtError"),
    "NotFoundError": (".errors", "NotFoundError"),
    "PermissionDeniedError": (".errors", "PermissionDeniedError"),
    "RateLimitError": (".errors", "RateLimitError"),
    "ResultDownloadError": (".errors", "ResultDownloadError"),
    "ResultTooLargeError": (".errors", "ResultTooLargeError"),
    "ServerError": (".errors", "ServerError"),
    "TransactionLinkError": (".errors", "TransactionLinkError"),
    "TransportError": (".errors", "TransportError"),
    "WaitTimeoutError": (".errors", "WaitTimeoutError"),
    "WebhookKeyUnavailableError": (".errors", "WebhookKeyUnavailableError"),
    "WebhookVerificationError": (".errors", "WebhookVerificationError"),
    "Case": (".models", "Case"),
    "CaseDocument": (".models", "CaseDocument"),
    "ErrorDetail": (".models", "ErrorDetail"),
    "LaunchOutcome": (".models", "LaunchOutcome"),
    "LaunchRequest": (".models", "LaunchRequest"),
    "Parameters": (".models", "Parameters"),
    "PartyDetails": (".models", "PartyDetails"),
    "Phone": (".models", "Phone"),
    "UnknownStatus": (".models", "UnknownStatus"),
    "WorkflowExecution": (".models", "WorkflowExecution"),
    "WorkflowStatus": (".models", "WorkflowStatus"),
    "is_final_status": (".models", "is_final_status"),
    "Cases": (".resources", "Cases"),
    "Workflows": (".resources", "Workflows"),
    "ParametersResource": (".resources", "Parameters"),
    "APIResponse": (".resources.raw", "APIResponse"),
    "RawCases": (".resources.raw", "RawCases"),
    "RawParameters": (".resources.raw", "RawParameters"),
    "RawResources": (".resources.raw", "RawResources"),
    "RawWorkflows": (".resources.raw", "RawWorkflows"),
}
# Submodules reachable as attributes of the package, as they were when it imported them.
_SUBMODULES = frozenset(
    {"coordination", "errors", "journal", "models", "resources", "testing", "webhooks"}
)


def __getattr__(name: str) -> Any:
    location = _LOCATIONS.get(name)
    if location is None:
        if name in _SUBMODULES:
            return importlib.import_module(f".{name}", __name__)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = location
    value = getattr(importlib.import_module(module, __name__), attribute)
    globals()[name] = value  # later lookups are plain module attributes
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
