"""Many processes acting as one client: the in-process default and Redis."""

# The Redis backend is imported when first named: a client that never uses it does not
# pay for its code at start-up. Type checkers see it through the imports below.
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._base import Coordination, KnownPauses, Member, RateBudget, WakeNews, WakeTarget
from ._local import LocalCoordination

if TYPE_CHECKING:
    from ._redis import RedisCoordination
    from ._redis_budget import RedisRateBudget

# Where each name loaded on first use lives.
_LOCATIONS = {
    "RedisCoordination": "._redis",
    "RedisRateBudget": "._redis_budget",
}


def __getattr__(name: str) -> Any:
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups are plain module attributes
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "Coordination",
    "KnownPauses",
    "LocalCoordination",
    "Member",
    "RateBudget",
    "RedisCoordination",
    "RedisRateBudget",
    "WakeNews",
    "WakeTarget",
]
