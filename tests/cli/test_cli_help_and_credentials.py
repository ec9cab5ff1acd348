"""Each command's --help explains and shows an example; credential errors name the variables."""

from __future__ import annotations

import pytest

from transactionlink_async._cli.main import build_parser
from transactionlink_async.testing import FakeTransactionLink

from .conftest import Cli

pytestmark = pytest.mark.anyio


def commands() -> list[str]:
    """Every subcommand the parser knows (argparse has no public way to list them)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices or ())


def help_of(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize("command", commands())
def test_every_command_has_a_description_and_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_of(command, capsys)
    usage, description = text.split("\n\n")[:2]
    assert usage.startswith(f"usage: transactionlink {command}")
    assert len(description.strip()) > 10
    example = text.split("example:\n", 1)[1].splitlines()[0]
    assert example.strip().startswith(f"transactionlink {command}")


def test_the_commands_are_found() -> None:
    assert {"demo", "run", "status", "wait", "result", "cancel"} <= set(commands())


async def test_a_token_that_is_not_an_organization_token_names_the_variables(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRANSACTIONLINK_TOKEN", "Bearer abc")
    ran = await cli("status", "e-1")
    assert ran.code == 2
    assert "TRANSACTIONLINK_TOKEN" in ran.err
    assert "TRANSACTIONLINK_API_KEY and TRANSACTIONLINK_API_SECRET" in ran.err
    assert "ApiKey(" not in ran.err


async def test_half_an_api_key_names_the_missing_variable(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRANSACTIONLINK_TOKEN")
    monkeypatch.setenv("TRANSACTIONLINK_API_KEY", "key")
    ran = await cli("status", "e-1")
    assert ran.code == 2
    assert "TRANSACTIONLINK_API_SECRET is not set" in ran.err


async def test_a_refused_token_names_the_variables_to_check(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, env: FakeTransactionLink
) -> None:
    monkeypatch.setenv("TRANSACTIONLINK_TOKEN", "tot_not-known-to-the-server")
    ran = await cli("status", env.create_execution())
    assert ran.code == 3
    assert "401" in ran.err or "uthenticat" in ran.err
    assert "check TRANSACTIONLINK_TOKEN" in ran.err
    assert "tot_not-known-to-the-server" not in ran.err
