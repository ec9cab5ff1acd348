"""What many test modules share: a retry policy that retries at once, and a client using it."""

from __future__ import annotations

from transactionlink_async import OrganizationToken, RetryPolicy, TransactionLink
from transactionlink_async.testing import FakeTransactionLink

#: The default policy's attempts and rules, with backoff sleeps of milliseconds.
FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_cap=0.02)


def fast_client(fake: FakeTransactionLink) -> TransactionLink:
    """A client of `fake` with its organization token and FAST_RETRY (the caller closes it)."""
    return TransactionLink(
        OrganizationToken(fake.org_token), base_url=fake.base_url, retry=FAST_RETRY
    )
