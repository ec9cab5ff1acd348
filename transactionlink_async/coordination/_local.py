"""LocalCoordination: the in-process default; clients sharing one instance share their news."""

from __future__ import annotations

from ._base import Coordination, Member, RateBudget, WakeNews, WakeTarget
from ._local_budget import LocalRateBudget
from ._markers import Markers
from ._news import LocalNews, MemberNews
from ._token_share import TokenShare

__all__ = ["LocalCoordination"]


class LocalCoordination(Coordination):
    """Everything stays inside the process: each client keeps its own token.

    Clients given the same instance share one rate budget and their webhook news (a wait
    that starts just after the delivery confirms at once). This is what a client uses
    when it is given no coordination.
    """

    def __init__(self) -> None:
        self._budget = LocalRateBudget()
        self._members: list[_LocalMember] = []
        self._news = LocalNews(Markers(), lambda: [m.target for m in self._members])

    def join(self, wakeups: WakeTarget) -> Member:
        member = _LocalMember(self, wakeups)
        self._members.append(member)
        return member

    def _leave(self, member: _LocalMember) -> None:
        if member in self._members:
            self._members.remove(member)

    def __repr__(self) -> str:
        return f"<LocalCoordination clients={len(self._members)}>"


class _LocalMember:
    def __init__(self, coordination: LocalCoordination, target: WakeTarget) -> None:
        self.target = target
        self._coordination = coordination
        self._budget = coordination._budget
        self._news = MemberNews(coordination._news, target)

    @property
    def budget(self) -> RateBudget:
        return self._budget

    @property
    def news(self) -> WakeNews:
        return self._news

    def tokens_for(self, key: str, secret: str) -> TokenShare | None:
        return None

    async def aclose(self) -> None:
        self._coordination._leave(self)
