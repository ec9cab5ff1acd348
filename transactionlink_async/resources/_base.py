"""What every resource shares: the client's handle to send through, and answers as models."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, TypeVar

from .._convert import ConversionError, structure
from .._handle import ClientHandle
from .._request import ApiRequest, parse_json
from .._retry import RetryMode
from .._transport import RawResponse
from ..errors import InvalidResponseError

T = TypeVar("T")

#: Set by `with_raw_response` around one resource call: the answer that call gets.
answer_slot: ContextVar[list[RawResponse] | None] = ContextVar(
    "transactionlink_answer_slot", default=None
)


class Resource:
    """A group of endpoints sharing one client."""

    def __init__(self, client: ClientHandle) -> None:
        self._client = client

    async def _send_model(self, request: ApiRequest, cls: type[T]) -> T:
        # send() and the parsing directly, not through send_json: one coroutine less on
        # the path every call takes.
        response = await self._client.send(request)
        slot = answer_slot.get()
        if slot is not None:
            slot.append(response)
        return parse_model(parse_json(response.body, request), cls, request)

    async def _send(self, request: ApiRequest) -> RawResponse:
        """Send a request whose answer has no model (e.g. a cancel)."""
        response = await self._client.send(request)
        slot = answer_slot.get()
        if slot is not None:
            slot.append(response)
        return response


def parse_model(data: Any, cls: type[T], request: ApiRequest) -> T:
    """The answer as a model, or InvalidResponseError naming the call (not the secrets in it)."""
    try:
        return structure(data, cls)
    except ConversionError as exc:
        message = f"{request.method} {request.path} answered with an unexpected shape: {exc}"
        if request.mode is RetryMode.CREATING:
            created = _created_id(data)
            message += (
                "; the request was carried out"
                + (f" (id {created})" if created else "")
                + ": look it up rather than sending it again"
            )
        raise InvalidResponseError(message) from exc


def _created_id(data: Any) -> str | None:
    if isinstance(data, dict):
        for key in ("id", "caseId", "parametersId"):
            value = data.get(key)
            if isinstance(value, str) and value.isprintable() and len(value) <= 200:
                return value
    return None
