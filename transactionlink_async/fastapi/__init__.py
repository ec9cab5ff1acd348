"""FastAPI helpers: the client in the app's lifespan, injected into routes, and the webhook route.

app = FastAPI(lifespan=transactionlink_lifespan())
add_webhook_route(app)

@app.get("/verifications/{execution_id}")
async def status(execution_id: str, tl: TransactionLinkDep) -> dict[str, str]: ...
"""

from ._depends import TransactionLinkDep, get_transactionlink
from ._lifespan import STATE_KEY, transactionlink_lifespan
from ._routes import add_webhook_route

__all__ = [
    "STATE_KEY",
    "TransactionLinkDep",
    "add_webhook_route",
    "get_transactionlink",
    "transactionlink_lifespan",
]
