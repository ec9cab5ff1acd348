"""The SDK's data: immutable attrs models of what the API sends and takes, and their enums."""

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import attrs

__all__ = [
    "AuthTokens",
    "Case",
    "CaseDocument",
    "ErrorDetail",
    "ErrorResponse",
    "LaunchOutcome",
    "LaunchRequest",
    "Parameters",
    "PartyDetails",
    "Phone",
    "UnknownStatus",
    "WorkflowExecution",
    "WorkflowStatus",
    "is_final_status",
]


class WorkflowStatus(str, enum.Enum):
    """The documented statuses of a workflow execution."""

    INITIALISED = "INITIALISED"
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    AWAITING = "AWAITING"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    TERMINATED = "TERMINATED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"
    PAUSED = "PAUSED"

    # str() and f-strings give the API's word, as a plain str would (3.10 has no StrEnum).
    __str__ = str.__str__

    @property
    def is_final(self) -> bool:
        """Whether the execution has stopped for good (AWAITING and PAUSED have not)."""
        return self in _FINAL_STATUSES


_FINAL_STATUSES = frozenset(
    {
        WorkflowStatus.COMPLETED,
        WorkflowStatus.FAILED,
        WorkflowStatus.TIMEOUT,
        WorkflowStatus.TERMINATED,
        WorkflowStatus.EXPIRED,
        WorkflowStatus.CANCELLED,
    }
)
_STATUS_BY_VALUE: Mapping[str, WorkflowStatus] = {s.value: s for s in WorkflowStatus}


class UnknownStatus(str):
    """A status the SDK does not know, kept as the API's word (a `str`); never final.

    Its own type, so that `WorkflowStatus | UnknownStatus` stays a union for type
    checkers (`WorkflowStatus | str` collapses to `str`, as the enum is a str):

    >>> match execution.status:
    ...     case WorkflowStatus.COMPLETED: ...
    ...     case UnknownStatus(): ...
    """

    __slots__ = ()

    @property
    def is_final(self) -> bool:
        """Always False: a status the SDK does not know does not end a wait."""
        return False

    def __repr__(self) -> str:
        return f"UnknownStatus({str.__repr__(self)})"


#: What an execution's `status` holds.
Status = WorkflowStatus | UnknownStatus


def status_from_text(text: str) -> WorkflowStatus | UnknownStatus:
    """The known status named by `text`, else `text` kept as an UnknownStatus."""
    known = _STATUS_BY_VALUE.get(text)
    if known is not None:
        return known
    return text if isinstance(text, UnknownStatus) else UnknownStatus(text)


def _as_status(value: WorkflowStatus | str) -> WorkflowStatus | UnknownStatus:
    # Statuses built by hand (`status="RUNNING"`) become what the API's would.
    if isinstance(value, WorkflowStatus):
        return value
    return status_from_text(value)


def is_final_status(status: WorkflowStatus | str) -> bool:
    """Whether `status` is final; a string the SDK does not know is not final."""
    member = status if isinstance(status, WorkflowStatus) else _STATUS_BY_VALUE.get(status)
    return member is not None and member in _FINAL_STATUSES


def _url_without_query(url: str | None) -> str:
    """Show a link without its query and fragment, where an access token may ride."""
    if url is None:
        return "None"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "'<unparsable link>'"
    hidden = "?..." if parts.query or parts.fragment else ""
    return repr(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")) + hidden)


# Mappings hold the API's free-form JSON (dicts): they take part in == but not in hash(),
# so a model stays hashable whatever its parameters hold.
def _json_object_field() -> Any:
    return attrs.field(default=None, hash=False)


@attrs.frozen(kw_only=True)
class WorkflowExecution:
    """One run of a workflow definition, as `GET /workflows/{id}` and the launch calls answer.

    `status` is a `WorkflowStatus`, or an `UnknownStatus` (the raw string) when the API
    sends one the SDK does not know; given as a plain string, it becomes one of the two.
    `token` (interactive runs) is a secret and is kept out of `repr()`.
    """

    id: str
    status: WorkflowStatus | UnknownStatus = attrs.field(converter=_as_status)
    workflow_definition_id: str | None = None
    case_id: str | None = None
    record_id: str | None = None
    workspace_id: str | None = None
    name: str | None = None
    revision: str | None = None
    locale: str | None = None
    parameters: Mapping[str, Any] | None = _json_object_field()
    expires_at: datetime | None = None
    execution_type: str | None = None
    execution_version: int | float | None = None
    ui_options: Mapping[str, Any] | None = _json_object_field()
    link: str | None = attrs.field(default=None, repr=_url_without_query)
    token: str | None = attrs.field(default=None, repr=False)
    origin: Mapping[str, Any] | None = _json_object_field()

    @property
    def is_final(self) -> bool:
        """Whether the execution has stopped for good; an unknown status is not final."""
        return is_final_status(self.status)

    @property
    def is_known_status(self) -> bool:
        """Whether the status is one the SDK knows (else it is kept as the raw string)."""
        return isinstance(self.status, WorkflowStatus)


@attrs.frozen(kw_only=True)
class Phone:
    """A phone number for a case: `country_code` like "+48", and the national number."""

    country_code: str
    number: str


@attrs.frozen(kw_only=True)
class CaseDocument:
    """A document attached to a case."""

    resource_id: str | None = None
    resource_name: str | None = None
    resource_path: str | None = None


@attrs.frozen(kw_only=True)
class PartyDetails:
    """What the API holds about a case's party: free-form personal and business data."""

    personal: Mapping[str, Any] | None = _json_object_field()
    business: Mapping[str, Any] | None = _json_object_field()
    documents: tuple[CaseDocument, ...] = ()


@attrs.frozen(kw_only=True)
class Case:
    """A case (the person or company a v1 workflow runs for), as `POST /cases` answers."""

    case_id: str
    party_id: str | None = None
    created_date: datetime | None = None
    party_details: PartyDetails | None = None


@attrs.frozen(kw_only=True)
class Parameters:
    """A stored parameter set for `POST /workflows/run`.

    The API names its id `id` or `parametersId`; both are read.
    """

    id: str


@attrs.frozen(kw_only=True)
class ErrorDetail:
    """One `code`/`message` pair of an API error answer ("" when the API left it out)."""

    code: str = ""
    message: str = ""


@attrs.frozen(kw_only=True)
class ErrorResponse:
    """The API's error body; `fingerprint` is what the vendor's support asks for."""

    fingerprint: str | None = None
    errors: tuple[ErrorDetail, ...] = ()


@attrs.frozen(kw_only=True)
class LaunchRequest:
    """The arguments of one `initialise` call, for `launch_many`.

    `key` names the request in a journal (`launch_many(..., journal=...)`): unique in
    that journal, the same on every run of the batch. It is not sent to the API.
    """

    workflow_definition_id: str
    locale: str
    parameters: Mapping[str, Any] | None = _json_object_field()
    expires_at: datetime | None = None
    record_id: str | None = None
    key: str | None = None


@attrs.frozen(kw_only=True)
class LaunchOutcome:
    """What became of one request of `launch_many`: its execution, or the error it met.

    `index` is the request's position in the input (outcomes come in completion order).
    `request` is the input item as given: a `LaunchRequest`, unless the input held
    something else, which is then refused with a `TypeError` in `error`.
    A `ValueError`/`TypeError` error means the request was refused before sending.
    `resumed` is True when a journal showed the request was dealt with by an earlier run
    (or another process): nothing was sent, and `execution` is the one recorded then.
    """

    index: int
    request: LaunchRequest
    execution: WorkflowExecution | None = None
    error: Exception | None = None
    resumed: bool = False

    @property
    def ok(self) -> bool:
        """Whether the execution was launched."""
        return self.error is None


@attrs.frozen(kw_only=True)
class AuthTokens:
    """What `POST /auth/authorize` and `/auth/refresh` answer; both tokens stay out of repr."""

    access_token: str = attrs.field(repr=False)
    refresh_token: str | None = attrs.field(default=None, repr=False)
    expiry_duration: float | None = None
    token_type: str | None = None
