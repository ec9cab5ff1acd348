"""Rate limits: RateLimit, where their state lives (RateBudget), pauses, adaptive launch pacing."""

from .budget import LocalRateBudget, RateBudget
from .limit import RateLimit

__all__ = ["LocalRateBudget", "RateBudget", "RateLimit"]
