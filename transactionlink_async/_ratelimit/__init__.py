"""Rate limits: RateLimit, the client's pauses and the pace it learns from 429s."""

from .limit import RateLimit

__all__ = ["RateLimit"]
