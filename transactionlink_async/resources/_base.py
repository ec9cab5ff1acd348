"""What every resource shares: a client to send through, and answers turned into models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from .._client import ApiRequest, parse_json
from .._convert import ConversionError, structure
from ..errors import InvalidResponseError

if TYPE_CHECKING:
    from .._client import TransactionLink

T = TypeVar("T")


class Resource:
    """A group of endpoints sharing one client."""

    def __init__(self, client: TransactionLink) -> None:
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
        raise InvalidResponseError(
            f"{request.method} {request.path} answered with an unexpected shape: {exc}"
        ) from exc
