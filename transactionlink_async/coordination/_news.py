"""Which webhook news is passed on between clients, and how it travels inside one process."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Protocol

from ..models import WorkflowStatus, status_from_text
from ._base import WakeTarget
from ._markers import Markers

__all__ = [
    "LocalNews",
    "MemberNews",
    "Newsroom",
    "decode_news",
    "encode_news",
    "worth_announcing",
]

#: Execution ids go into key names and messages: anything longer or odder is no id of
#: ours (waits check their ids the same way before they start).
_MAX_ID = 200


def worth_announcing(execution_id: str, status: str | None) -> bool:
    """Whether news may end a wait: a final, unknown or missing status, for a usable id.

    A known status that is not final (RUNNING, AWAITING...) would only cost each wait
    elsewhere a GET that finds the execution still running.
    """
    if not execution_id or len(execution_id) > _MAX_ID:
        return False
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in execution_id):
        return False
    if status is None:
        return True
    known = status_from_text(str(status))
    return not isinstance(known, WorkflowStatus) or known.is_final


def encode_news(execution_id: str, status: str | None, sender: str) -> bytes:
    return json.dumps({"id": execution_id, "status": status, "from": sender}).encode()


def decode_news(data: bytes) -> tuple[str, str]:
    """(execution id, sender) of a news message; ValueError or TypeError if it is not one."""
    news = json.loads(data)
    execution_id, sender = news.get("id"), news.get("from")
    if not isinstance(execution_id, str) or not isinstance(sender, str):
        raise TypeError("not a news message")
    if not worth_announcing(execution_id, None):
        raise ValueError("not an execution id")
    return execution_id, sender


class Newsroom(Protocol):
    """The news of one backend, shared by its clients in this process."""

    async def announce(
        self, execution_id: str, status: str | None, *, by: WakeTarget | None
    ) -> None: ...

    async def announced(self, execution_id: str) -> bool: ...


class MemberNews:
    """One client's WakeNews: what it announces wakes every client but itself.

    (It woke its own waits already, before announcing.)
    """

    def __init__(self, room: Newsroom, target: WakeTarget) -> None:
        self._room = room
        self._target = target

    async def announce(self, execution_id: str, status: str | None) -> None:
        await self._room.announce(execution_id, status, by=self._target)

    async def announced(self, execution_id: str) -> bool:
        return await self._room.announced(execution_id)


class LocalNews:
    """News inside one process: the other clients are woken directly."""

    def __init__(self, markers: Markers, everyone: Callable[[], Iterable[WakeTarget]]) -> None:
        self._markers = markers
        self._everyone = everyone

    async def announce(
        self, execution_id: str, status: str | None, *, by: WakeTarget | None
    ) -> None:
        self.announce_here(execution_id, status, by=by)

    def announce_here(
        self, execution_id: str, status: str | None, *, by: WakeTarget | None
    ) -> bool:
        """Note the news and wake this process's other clients; False if not worth it."""
        if not worth_announcing(execution_id, status):
            return False
        self._markers.note(execution_id)
        for target in self._everyone():
            if target is not by:
                target.wake(execution_id)
        return True

    async def announced(self, execution_id: str) -> bool:
        return self._markers.seen(execution_id)
