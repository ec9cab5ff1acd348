"""What every resource shares: the client's handle to send through, and answers as models."""

from __future__ import annotations

from typing import Any, TypeVar

from .._convert import ConversionError, structure
from .._handle import ClientHandle
from .._request import ApiRequest, parse_json
from .._retry import RetryMode
from ..errors import InvalidResponseError

T = TypeVar("T")


class Resource:
    """A group of endpoints sharing one client."""

    def __init__(self, client: ClientHandle) -> None:
        self._client = client

    async def _send_model(self, request: ApiRequest, cls: type[T]) -> T:
        # send() and the parsing directly, not through send_json: one coroutine less on
        # the path every call takes.
        response = await self._client.send(request)
        return parse_model(parse_json(response.body, request), cls, request)


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
