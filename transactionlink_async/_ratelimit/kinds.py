"""Which requests share a pause and a budget: their "kind", decided in this one place."""

from __future__ import annotations

__all__ = ["WHOLE_API", "request_kind"]

#: The one kind every request belongs to.
WHOLE_API = "api"


def request_kind(method: str, path: str) -> str:
    """The kind of request whose pause and budget `method path` shares.

    The vendor documents no rate limits, so nothing says whether they count per endpoint,
    per kind of call or per account. The safe reading is the widest one: every request
    counts against one limit, so a 429 on any call pauses them all and a `RateLimit`
    caps them all together. Pausing reads along with launches costs a second now and then;
    the narrower readings would keep sending into a limit that may be shared.

    To count kinds apart, return another name here, e.g. `"create"` for the POSTs that
    create something and `"read"` for the rest: pauses, budgets and launch pacing all
    follow it, in one process and across processes.
    """
    return WHOLE_API
