"""Bad input raises a clear ValueError/TypeError before anything is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from transactionlink_async import OrganizationToken, TransactionLink
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio

NOW = datetime.now(timezone.utc)


@pytest.fixture
async def env() -> AsyncIterator[tuple[FakeTransactionLink, TransactionLink]]:
    async with (
        FakeTransactionLink() as fake,
        TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url) as tl,
    ):
        yield fake, tl


Call = Callable[[TransactionLink], Awaitable[Any]]

BAD_CALLS: list[tuple[str, Call, type[Exception], str]] = [
    ("empty id", lambda tl: tl.workflows.get(""), ValueError, "empty"),
    ("path id", lambda tl: tl.workflows.get("../auth"), ValueError, "plain id"),
    ("slash id", lambda tl: tl.workflows.cancel("a/b"), ValueError, "plain id"),
    ("query id", lambda tl: tl.workflows.get_result("a?x=1"), ValueError, "plain id"),
    ("int id", lambda tl: tl.workflows.get(5), TypeError, "str"),  # type: ignore[arg-type]
    (
        "empty definition",
        lambda tl: tl.workflows.initialise(workflow_definition_id="", locale="en"),
        ValueError,
        "workflow_definition_id",
    ),
    (
        "blank locale",
        lambda tl: tl.workflows.initialise(workflow_definition_id="d", locale="  "),
        ValueError,
        "locale",
    ),
    (
        "naive expiry",
        lambda tl: tl.workflows.initialise(
            workflow_definition_id="d", locale="en", expires_at=datetime.now() + timedelta(days=1)
        ),
        ValueError,
        "timezone-aware",
    ),
    (
        "expiry too soon",
        lambda tl: tl.workflows.initialise(
            workflow_definition_id="d", locale="en", expires_at=NOW + timedelta(minutes=29)
        ),
        ValueError,
        "30 minutes",
    ),
    (
        "expiry too late",
        lambda tl: tl.workflows.initialise(
            workflow_definition_id="d", locale="en", expires_at=NOW + timedelta(days=31)
        ),
        ValueError,
        "30 days",
    ),
    (
        "expiry not a datetime",
        lambda tl: tl.workflows.initialise(
            workflow_definition_id="d",
            locale="en",
            expires_at="tomorrow",  # type: ignore[arg-type]
        ),
        TypeError,
        "datetime",
    ),
    (
        "parameters not a mapping",
        lambda tl: tl.workflows.initialise(
            workflow_definition_id="d",
            locale="en",
            parameters=[1],  # type: ignore[arg-type]
        ),
        TypeError,
        "mapping",
    ),
    (
        "parameters not JSON",
        lambda tl: tl.workflows.initialise(
            workflow_definition_id="d", locale="en", parameters={"a": object()}
        ),
        TypeError,
        "JSON",
    ),
    (
        "run without case",
        lambda tl: tl.workflows.run(workflow_definition_id="d", case_id=""),
        ValueError,
        "case_id",
    ),
    ("case name type", lambda tl: tl.cases.create(first_name=1), TypeError, "first_name"),  # type: ignore[arg-type]
    ("case phone", lambda tl: tl.cases.create(phone="123"), TypeError, "phone"),  # type: ignore[arg-type]
    ("parameters list", lambda tl: tl.parameters.create([1]), TypeError, "mapping"),  # type: ignore[arg-type]
    ("max_bytes", lambda tl: tl.workflows.get_result("a", max_bytes=0), ValueError, "max_bytes"),
    (
        "parameters with NaN",
        lambda tl: tl.workflows.initialise(
            workflow_definition_id="d", locale="en", parameters={"x": float("nan")}
        ),
        ValueError,
        "not valid JSON",
    ),
]


@pytest.mark.parametrize(
    ("name", "call", "error", "words"), BAD_CALLS, ids=[c[0] for c in BAD_CALLS]
)
async def test_bad_input_is_refused_before_sending(
    env: tuple[FakeTransactionLink, TransactionLink],
    name: str,
    call: Call,
    error: type[Exception],
    words: str,
) -> None:
    fake, tl = env
    with pytest.raises(error, match=words):
        await call(tl)
    assert fake.journal == []


async def test_expiry_inside_the_window_is_sent(
    env: tuple[FakeTransactionLink, TransactionLink],
) -> None:
    fake, tl = env
    await tl.workflows.initialise(
        workflow_definition_id="d", locale="en", expires_at=NOW + timedelta(days=2)
    )
    assert len(fake.journal) == 1


@pytest.mark.parametrize(
    ("base_url", "words"),
    [
        ("api.transactionlink.io", "absolute"),
        ("ftp://api.transactionlink.io", "absolute"),
        ("http://api.transactionlink.io", "https"),
        ("http://10.0.0.1:8080", "https"),
        ("https://api.transactionlink.io?x=1", "query"),
        ("https://user:pw@api.transactionlink.io", "user"),
    ],
)
def test_bad_base_urls(base_url: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        TransactionLink(OrganizationToken("tot_x"), base_url=base_url)


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:1", "http://localhost:2", "http://[::1]:3"])
def test_loopback_http_is_allowed(base_url: str) -> None:
    TransactionLink(OrganizationToken("tot_x"), base_url=base_url)


def test_wrong_credential_type() -> None:
    with pytest.raises(TypeError, match="OrganizationToken"):
        TransactionLink("tot_x")  # type: ignore[arg-type]


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="control"):
        TransactionLink(OrganizationToken("tot_x"), user_agent="bot\r\nX-Evil: 1")
    with pytest.raises(ValueError, match="max_connections"):
        TransactionLink(OrganizationToken("tot_x"), max_connections=0)
    with pytest.raises(TypeError, match="RetryPolicy"):
        TransactionLink(OrganizationToken("tot_x"), retry=3)  # type: ignore[arg-type]


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRANSACTIONLINK_TOKEN", "TRANSACTIONLINK_API_KEY", "TRANSACTIONLINK_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="TRANSACTIONLINK_TOKEN"):
        TransactionLink.from_env()
    monkeypatch.setenv("TRANSACTIONLINK_API_KEY", "k")
    monkeypatch.setenv("TRANSACTIONLINK_API_SECRET", "s")
    monkeypatch.setenv("TRANSACTIONLINK_BASE_URL", "http://127.0.0.1:9")
    tl = TransactionLink.from_env(max_connections=5)
    assert tl.base_url == "http://127.0.0.1:9"
    monkeypatch.setenv("TRANSACTIONLINK_TOKEN", "tot_abc")
    assert "tot_abc" not in repr(TransactionLink.from_env())
