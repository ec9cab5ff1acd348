"""transactionlink_async: the asyncio SDK for the TransactionLink workflow API."""

# Public names are imported when first used, not with the package: a short-lived job or
# the command line pays only for what it touches (cattrs converters, webhook signature
# checks, downloads...). Type checkers see the names through the imports below.
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._auth import ApiKey, Credentials, OrganizationToken
    from ._batches.launch import LaunchBatch
    from ._batches.wait import WaitBatch
    from ._client import DEFAULT_BASE_URL, TransactionLink
    from ._download.results import DownloadedResult, ResultStream
    from ._retry import PollPolicy, RetryPolicy
    from ._session import Timeouts
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

# Where each public name lives, imported on first use.
_LOCATIONS = {
    "ApiKey": "._auth",
    "Credentials": "._auth",
    "OrganizationToken": "._auth",
    "LaunchBatch": "._batches.launch",
    "WaitBatch": "._batches.wait",
    "DEFAULT_BASE_URL": "._client",
    "TransactionLink": "._client",
    "DownloadedResult": "._download.results",
    "ResultStream": "._download.results",
    "PollPolicy": "._retry",
    "RetryPolicy": "._retry",
    "Timeouts": "._session",
    "WebhookEvent": "._webhooks.receive",
    "APIError": ".errors",
    "AuthenticationError": ".errors",
    "BadRequestError": ".errors",
    "ClientClosedError": ".errors",
    "InvalidResponseError": ".errors",
    "NotFoundError": ".errors",
    "PermissionDeniedError": ".errors",
    "RateLimitError": ".errors",
    "ResultDownloadError": ".errors",
    "ResultTooLargeError": ".errors",
    "ServerError": ".errors",
    "TransactionLinkError": ".errors",
    "TransportError": ".errors",
    "WaitTimeoutError": ".errors",
    "WebhookKeyUnavailableError": ".errors",
    "WebhookVerificationError": ".errors",
    "Case": ".models",
    "CaseDocument": ".models",
    "ErrorDetail": ".models",
    "LaunchOutcome": ".models",
    "LaunchRequest": ".models",
    "Parameters": ".models",
    "PartyDetails": ".models",
    "Phone": ".models",
    "WorkflowExecution": ".models",
    "WorkflowStatus": ".models",
    "is_final_status": ".models",
}


# Submodules reachable as attributes of the package, as they were when it imported them.
_SUBMODULES = frozenset({"coordination", "errors", "models", "resources", "testing", "webhooks"})


def __getattr__(name: str) -> Any:
    module = _LOCATIONS.get(name)
    if module is None:
        if name in _SUBMODULES:
            return importlib.import_module(f".{name}", __name__)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups are plain module attributes
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
