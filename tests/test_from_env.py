"""TransactionLink.from_env: which credentials it picks, seen in what the client sends."""

from __future__ import annotations

import inspect

import pytest

from transactionlink_async import ClientOptions, TransactionLink
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio

ENV = (
    "TRANSACTIONLINK_TOKEN",
    "TRANSACTIONLINK_API_KEY",
    "TRANSACTIONLINK_API_SECRET",
    "TRANSACTIONLINK_BASE_URL",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, fake: FakeTransactionLink) -> pytest.MonkeyPatch:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRANSACTIONLINK_BASE_URL", fake.base_url)
    return monkeypatch


async def sent_authorization(fake: FakeTransactionLink) -> str:
    """The Authorization header a from_env client sends on its first call."""
    execution_id = fake.create_execution()
    async with TransactionLink.from_env() as tl:
        await tl.workflows.get(execution_id)
    return fake.requests("GET", "/workflows/*")[-1].headers["Authorization"]


async def test_the_token_wins_when_token_key_and_secret_are_all_set(
    env: pytest.MonkeyPatch, fake: FakeTransactionLink
) -> None:
    env.setenv("TRANSACTIONLINK_TOKEN", fake.org_token)
    env.setenv("TRANSACTIONLINK_API_KEY", fake.api_key)
    env.setenv("TRANSACTIONLINK_API_SECRET", fake.api_secret)
    assert await sent_authorization(fake) == fake.org_token
    assert fake.count("POST", "/auth/*") == 0


async def test_key_and_secret_serve_when_there_is_no_token(
    env: pytest.MonkeyPatch, fake: FakeTransactionLink
) -> None:
    env.setenv("TRANSACTIONLINK_TOKEN", "")  # set but empty counts as unset
    env.setenv("TRANSACTIONLINK_API_KEY", fake.api_key)
    env.setenv("TRANSACTIONLINK_API_SECRET", fake.api_secret)
    assert (await sent_authorization(fake)).startswith("Bearer ")
    (authorize,) = fake.requests("POST", "/auth/authorize")
    assert authorize.json() == {"key": fake.api_key, "secret": fake.api_secret}


@pytest.mark.parametrize("missing", ["TRANSACTIONLINK_API_KEY", "TRANSACTIONLINK_API_SECRET"])
async def test_half_an_api_key_is_refused(
    env: pytest.MonkeyPatch, fake: FakeTransactionLink, missing: str
) -> None:
    env.setenv("TRANSACTIONLINK_API_KEY", fake.api_key)
    env.setenv("TRANSACTIONLINK_API_SECRET", fake.api_secret)
    env.delenv(missing)
    with pytest.raises(ValueError, match="TRANSACTIONLINK_TOKEN"):
        TransactionLink.from_env()


def test_from_env_takes_every_keyword_argument_of_the_constructor() -> None:
    # ClientOptions types from_env(**overrides): a keyword missing there is refused by
    # mypy for a call that works (rate_limit=... was one).
    keywords = {
        name
        for name, parameter in inspect.signature(TransactionLink.__init__).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }
    options = ClientOptions.__required_keys__ | ClientOptions.__optional_keys__
    assert options == keywords | {"credentials"}
