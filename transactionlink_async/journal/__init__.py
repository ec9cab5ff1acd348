"""Durable batches: launch journals that let a killed batch resume without launching twice."""

from ._base import Claim, Journal
from ._errors import JournalBusyError, JournalError, JournalUnavailableError
from ._model import JournalEntry, KeyState, Lookup
from ._redis import RedisJournal
from ._sqlite import SqliteJournal

__all__ = [
    "Claim",
    "Journal",
    "JournalBusyError",
    "JournalEntry",
    "JournalError",
    "JournalUnavailableError",
    "KeyState",
    "Lookup",
    "RedisJournal",
    "SqliteJournal",
]
