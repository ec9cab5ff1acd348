"""What many test modules share: a retry policy that retries at once, so tests stay fast."""

from __future__ import annotations

from transactionlink_async import RetryPolicy

#: The default policy's attempts and rules, with backoff sleeps of milliseconds.
FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_cap=0.02)
