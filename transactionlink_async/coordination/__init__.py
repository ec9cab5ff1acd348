"""Many processes acting as one client: the in-process default and Redis."""

from ._base import Coordination, KnownPauses, Member, RateBudget, WakeNews, WakeTarget
from ._local import LocalCoordination
from ._redis import RedisCoordination
from ._redis_budget import RedisRateBudget

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
