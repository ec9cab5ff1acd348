"""`tl.with_raw_response`: the same calls, answering status, headers and the parsed model."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs

from ..models import Case, CaseDocument, Phone, WorkflowExecution
from ..models import Parameters as ParametersModel
from ._base import answer_slot
from .cases import Cases
from .parameters import Parameters
from .workflows import Workflows

__all__ = ["APIResponse", "RawCases", "RawParameters", "RawResources", "RawWorkflows"]

T = TypeVar("T")


@attrs.frozen
class APIResponse(Generic[T]):
    """One API answer: its HTTP status, its headers and the model parsed from its body.

    >>> answer = await tl.with_raw_response.workflows.get(execution_id)
    >>> answer.status, answer.headers.get("X-Request-Id"), answer.parsed.status
    """

    #: The HTTP status of the answer the call returned (after any retries).
    status: int
    #: Its headers (case-insensitive).
    headers: Mapping[str, str] = attrs.field(repr=False)
    #: What the plain call returns: the model (None for calls without one).
    parsed: T


async def _answer(call: Awaitable[T]) -> APIResponse[T]:
    slot: list[Any] = []
    token = answer_slot.set(slot)
    try:
        parsed = await call
    finally:
        answer_slot.reset(token)
    response = slot[-1]
    return APIResponse(response.status, response.headers, parsed)


class RawCases:
    """`tl.with_raw_response.cases`."""

    def __init__(self, cases: Cases) -> None:
        self._cases = cases

    async def create(
        self,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        personal_number: str | None = None,
        email: str | None = None,
        phone: Phone | Mapping[str, str] | None = None,
        company_name: str | None = None,
        company_number: str | None = None,
        company_address: str | None = None,
        documents: Iterable[CaseDocument | Mapping[str, str]] = (),
    ) -> APIResponse[Case]:
        """`tl.cases.create(...)`, with the answer's status and headers."""
        return await _answer(
            self._cases.create(
                first_name=first_name,
                last_name=last_name,
                personal_number=personal_number,
                email=email,
                phone=phone,
                company_name=company_name,
                company_number=company_number,
                company_address=company_address,
                documents=documents,
            )
        )


class RawParameters:
    """`tl.with_raw_response.parameters`."""

    def __init__(self, parameters: Parameters) -> None:
        self._parameters = parameters

    async def create(self, values: Mapping[str, Any]) -> APIResponse[ParametersModel]:
        """`tl.parameters.create(values)`, with the answer's status and headers."""
        return await _answer(self._parameters.create(values))


class RawWorkflows:
    """`tl.with_raw_response.workflows`: the calls that get one answer each."""

    def __init__(self, workflows: Workflows) -> None:
        self._workflows = workflows

    async def run(
        self, *, workflow_definition_id: str, case_id: str, parameters_id: str | None = None
    ) -> APIResponse[WorkflowExecution]:
        """`tl.workflows.run(...)`, with the answer's status and headers."""
        return await _answer(
            self._workflows.run(
                workflow_definition_id=workflow_definition_id,
                case_id=case_id,
                parameters_id=parameters_id,
            )
        )

    async def initialise(
        self,
        *,
        workflow_definition_id: str,
        locale: str,
        parameters: Mapping[str, Any] | None = None,
        expires_at: datetime | None = None,
        record_id: str | None = None,
    ) -> APIResponse[WorkflowExecution]:
        """`tl.workflows.initialise(...)`, with the answer's status and headers."""
        return await _answer(
            self._workflows.initialise(
                workflow_definition_id=workflow_definition_id,
                locale=locale,
                parameters=parameters,
                expires_at=expires_at,
                record_id=record_id,
            )
        )

    async def get(self, execution_id: str) -> APIResponse[WorkflowExecution]:
        """`tl.workflows.get(execution_id)`, with the answer's status and headers."""
        return await _answer(self._workflows.get(execution_id))

    async def cancel(self, execution_id: str) -> APIResponse[None]:
        """`tl.workflows.cancel(execution_id)`, with the answer's status and headers."""
        return await _answer(self._workflows.cancel(execution_id))


class RawResources:
    """The resource calls of one client, each answering an `APIResponse`."""

    def __init__(self, cases: Cases, parameters: Parameters, workflows: Workflows) -> None:
        self.cases: RawCases = RawCases(cases)
        self.parameters: RawParameters = RawParameters(parameters)
        self.workflows: RawWorkflows = RawWorkflows(workflows)
