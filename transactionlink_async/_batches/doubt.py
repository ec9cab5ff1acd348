"""Whether a failed launch may still have created its execution: the journal's one decision."""

from __future__ import annotations

from ..errors import APIError, ClientClosedError, TransportError

__all__ = ["may_have_launched"]


def may_have_launched(error: BaseException) -> bool:
    """True unless `error` proves the API created nothing.

    A 4xx answer is a refusal; an error raised before sending (bad arguments, a closed
    client, a connection that never opened) sent nothing. A 5xx answer, a request sent
    without a readable answer, and anything unexpected may have created the execution:
    those keys are left in doubt rather than risk launching them twice.
    """
    if isinstance(error, APIError):
        return error.status >= 500
    if isinstance(error, TransportError):
        return error.request_sent
    return not isinstance(error, (ValueError, TypeError, ClientClosedError))
