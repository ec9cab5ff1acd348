"""The fake's access tokens expire exactly when their lifetime says, fractions included."""

from __future__ import annotations

from transactionlink_async.testing._auth import TokenStore


def test_a_fractional_lifetime_is_kept_exactly() -> None:
    now = [1000.9]  # late in a second: a whole-second `exp` would already have passed
    store = TokenStore(access_token_lifetime=0.4, wall_clock=lambda: now[0])
    answer = store.authorize(store.api_key, store.api_secret)
    assert answer is not None
    header = f"Bearer {answer['accessToken']}"
    assert store.accepts(header)
    now[0] = 1001.29
    assert store.accepts(header)
    now[0] = 1001.31
    assert not store.accepts(header)


def test_a_zero_lifetime_is_expired_at_once() -> None:
    store = TokenStore(access_token_lifetime=0, wall_clock=lambda: 5.0)
    answer = store.authorize(store.api_key, store.api_secret)
    assert answer is not None
    assert not store.accepts(f"Bearer {answer['accessToken']}")
