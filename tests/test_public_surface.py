"""The public names: pinned, so that a move inside the package cannot drop or rename one."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "transactionlink_async": {
        "APIError", "ApiKey", "AuthenticationError", "BadRequestError", "Case", "CaseDocument",
        "ClientClosedError", "Credentials", "DEFAULT_BASE_URL", "DownloadedResult",
        "ErrorDetail", "InvalidResponseError", "LaunchBatch", "LaunchOutcome", "LaunchRequest",
        "NotFoundError", "OrganizationToken", "Parameters", "PartyDetails",
        "PermissionDeniedError", "Phone", "PollPolicy", "RateLimitError", "ResultDownloadError",
        "ResultStream", "ResultTooLargeError", "RetryPolicy", "ServerError", "Timeouts",
        "TransactionLink", "TransactionLinkError", "TransportError", "WaitBatch",
        "WaitTimeoutError", "WebhookEvent", "WebhookKeyUnavailableError",
        "WebhookVerificationError", "WorkflowExecution", "WorkflowStatus", "__version__",
        "is_final_status", "APIResponse", "Cases", "ClientOptions", "Events",
        "ParametersResource", "ProgressCallback", "RawCases", "RawParameters", "RawResources",
        "RawWorkflows", "RequestEvent", "ResponseEvent", "UnknownStatus", "Webhooks",
        "Workflows",
    },
    "transactionlink_async.fastapi": {
        "STATE_KEY", "TransactionLinkDep", "add_webhook_route", "get_transactionlink",
        "transactionlink_lifespan",
    },
    "transactionlink_async.webhooks": {
        "DEFAULT_MAX_BODY", "SIGNATURE_HEADER", "WebhookEvent", "Webhooks", "aiohttp_handler",
        "event_from_body", "receive", "signature_header", "starlette_endpoint",
        "WEBHOOK_OPENAPI_EXTRA", "WEBHOOK_RESPONSES",
    },
    "transactionlink_async.testing": {
        "Delivery", "DeliveryAttempt", "FINAL_STATUSES", "FakeS3", "FakeTransactionLink",
        "FaultRule", "GeneratedJson", "JournalEntry", "S3Fault", "S3Object", "S3Request",
        "S3Result", "WebhookSender", "WorkflowScript",
    },
}  # fmt: skip


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_every_public_name_is_exported_and_importable(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = set(module.__all__)
    missing = PUBLIC[module_name] - exported
    assert not missing, f"{module_name} no longer exports {sorted(missing)}"
    for name in exported:
        assert getattr(module, name) is not None, f"{module_name}.{name} is exported but unset"


def test_the_resources_on_a_client_are_the_resource_classes() -> None:
    from transactionlink_async import OrganizationToken, TransactionLink
    from transactionlink_async.resources import Cases, Parameters, Workflows
    from transactionlink_async.webhooks import Webhooks

    tl = TransactionLink(OrganizationToken("tot_x"))
    assert isinstance(tl.cases, Cases)
    assert isinstance(tl.parameters, Parameters)
    assert isinstance(tl.workflows, Workflows)
    assert isinstance(tl.webhooks, Webhooks)
