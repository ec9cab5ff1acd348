"""`FastAPI(lifespan=transactionlink_lifespan(...))`: one client, opened and closed with the app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from .._client import TransactionLink

__all__ = ["STATE_KEY", "Lifespan", "transactionlink_lifespan"]

#: Where the client lives in the lifespan state (`request.state.transactionlink`).
STATE_KEY = "transactionlink"

#: What Starlette and FastAPI take as `lifespan=`.
Lifespan = Callable[[Any], AbstractAsyncContextManager[dict[str, Any]]]


def transactionlink_lifespan(
    client: TransactionLink | Callable[[], TransactionLink] | None = None,
) -> Lifespan:
    """A lifespan that opens the client when the app starts and closes it when it stops.

    `client` is a TransactionLink, a function making one (called at each start, so an app
    started twice, as tests do, gets a fresh client), or None for
    `TransactionLink.from_env()`. Routes get it with the `TransactionLinkDep` dependency;
    it is also `app.state.transactionlink` for code that has only the app.

    >>> app = FastAPI(lifespan=transactionlink_lifespan())
    """
    if client is not None and not isinstance(client, TransactionLink) and not callable(client):
        raise TypeError(
            "transactionlink_lifespan takes a TransactionLink, a function returning one, or "
            f"None (for TransactionLink.from_env()), got {type(client).__name__}"
        )

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        tl = _make(client)
        async with tl:
            state = getattr(app, "state", None)
            if state is not None:
                setattr(state, STATE_KEY, tl)
            yield {STATE_KEY: tl}

    return lifespan


def _make(client: TransactionLink | Callable[[], TransactionLink] | None) -> TransactionLink:
    if client is None:
        return TransactionLink.from_env()
    if isinstance(client, TransactionLink):
        return client
    made = client()
    if not isinstance(made, TransactionLink):
        raise TypeError(
            f"the function given to transactionlink_lifespan returned {type(made).__name__}, "
            "not a TransactionLink"
        )
    return made
