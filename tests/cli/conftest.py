"""Fixtures for the command line: a fake server, the environment pointing at it, and a runner."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from transactionlink_async import OrganizationToken, TransactionLink
from transactionlink_async._cli import amain
from transactionlink_async.testing import FakeTransactionLink

ENV_NAMES = (
    "TRANSACTIONLINK_TOKEN",
    "TRANSACTIONLINK_API_KEY",
    "TRANSACTIONLINK_API_SECRET",
    "TRANSACTIONLINK_BASE_URL",
    "TRANSACTIONLINK_REDIS_URL",
)


@attrs.frozen
class Ran:
    """What one command line run gave: exit code and both streams."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        lines = self.out.splitlines()
        assert len(lines) == 1, f"expected one JSON line on stdout, got {self.out!r}"
        return json.loads(lines[0])


class Cli:
    """Runs `transactionlink ...` in the test's event loop, capturing stdout and stderr."""

    def __init__(self, capsys: pytest.CaptureFixture[str], fake: FakeTransactionLink) -> None:
        self._capsys = capsys
        self._fake = fake

    async def __call__(self, *argv: str) -> Ran:
        self._capsys.readouterr()
        code = await amain(list(argv))
        captured = self._capsys.readouterr()
        ran = Ran(code, captured.out, captured.err)
        for secret in (self._fake.org_token, self._fake.api_secret):
            assert secret not in ran.out + ran.err, "a secret was printed"
        return ran


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, fake: FakeTransactionLink) -> FakeTransactionLink:
    """The environment a user would set, pointing at the fake server."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRANSACTIONLINK_TOKEN", fake.org_token)
    monkeypatch.setenv("TRANSACTIONLINK_BASE_URL", fake.base_url)
    return fake


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], env: FakeTransactionLink) -> Cli:
    return Cli(capsys, env)


@pytest.fixture
async def client(fake: FakeTransactionLink) -> AsyncIterator[TransactionLink]:
    """A client of the same server, to set up executions the commands then look at."""
    async with TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url) as tl:
        yield tl
