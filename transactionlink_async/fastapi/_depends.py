"""`tl: TransactionLinkDep` in a route: the client the lifespan opened, injected by FastAPI."""

from typing import TYPE_CHECKING, Annotated, Protocol

try:
    from fastapi import Depends
    from starlette.requests import HTTPConnection
except ImportError as exc:
    raise ImportError(
        "transactionlink_async.fastapi needs FastAPI: pip install fastapi "
        "'transactionlink-async[starlette,webhooks]'"
    ) from exc

from .._client import TransactionLink
from ._lifespan import STATE_KEY


class _WithState(Protocol):
    """What the dependency reads of a request: its lifespan state."""

    @property
    def state(self) -> object: ...


if TYPE_CHECKING:
    # Any request or websocket will do for type checkers (HTTPConnection is generic in
    # recent Starlette); FastAPI must see the class itself to pass the request in.
    Connection = _WithState
else:
    Connection = HTTPConnection

__all__ = ["TransactionLinkDep", "get_transactionlink"]


def get_transactionlink(connection: Connection) -> TransactionLink:
    """The app's client (a FastAPI dependency); RuntimeError when no lifespan opened one."""
    client = getattr(connection.state, STATE_KEY, None)
    if client is None:
        # Servers that do not hand the lifespan state to requests: the app keeps it too.
        scope = getattr(connection, "scope", {})
        app_state = getattr(scope.get("app"), "state", None)
        client = getattr(app_state, STATE_KEY, None)
    if not isinstance(client, TransactionLink):
        raise RuntimeError(  # noqa: TRY004 - the app is set up wrong, not an argument
            "no TransactionLink client in this app's state: create the app with "
            "FastAPI(lifespan=transactionlink_lifespan(...)) from transactionlink_async.fastapi"
        )
    return client


#: A route parameter annotated with this gets the app's client: `tl: TransactionLinkDep`.
TransactionLinkDep = Annotated[TransactionLink, Depends(get_transactionlink)]
