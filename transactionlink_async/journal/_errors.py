"""The errors a journal raises about itself (launch outcomes use LaunchInDoubtError)."""

from __future__ import annotations

from ..errors import TransactionLinkError

__all__ = ["JournalBusyError", "JournalError", "JournalUnavailableError"]


class JournalError(TransactionLinkError):
    """The journal cannot be used: not a journal file, a newer format, closed."""


class JournalBusyError(JournalError):
    """Another process has this SQLite journal open (use RedisJournal to share a batch)."""


class JournalUnavailableError(JournalError):
    """The journal's store did not answer; nothing was launched on its behalf."""
