"""The entry points: `python -m transactionlink_async`, `main(argv)`, and argument parsing."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transactionlink_async import __version__
from transactionlink_async._cli import demo as demo_module
from transactionlink_async._cli import main
from transactionlink_async._cli.commands import parse_param
from transactionlink_async._cli.main import (
    EXIT_API,
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_USAGE,
    build_parser,
)

from .conftest import ENV_NAMES

# The checkout under test, so `-m` imports its package rather than an installed one.
ROOT = Path(__file__).resolve().parents[2]


def test_parse_param_text_and_json() -> None:
    assert parse_param("name=Ada") == ("name", "Ada")
    assert parse_param("note=a=b") == ("note", "a=b")
    assert parse_param("empty=") == ("empty", "")
    assert parse_param("amount:=100") == ("amount", 100)
    assert parse_param("tags:=[1, true]") == ("tags", [1, True])
    assert parse_param('code:="0123"') == ("code", "0123")


@pytest.mark.parametrize("text", ["novalue", "=x", ":=1", "n:=not json"])
def test_parse_param_refuses_malformed_pairs(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_param(text)


@given(st.text(min_size=1).filter(lambda k: "=" not in k and not k.endswith(":")), st.text())
def test_parse_param_keeps_any_text_value(key: str, value: str) -> None:
    assert parse_param(f"{key}={value}") == (key, value)


def test_main_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    assert main(["--help"]) == 0
    assert "exit codes" in capsys.readouterr().out


def test_main_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wait", "x", "--timeout", "-3"]) == 2
    assert "positive number of seconds" in capsys.readouterr().err


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ENV_NAMES}


def test_python_m_without_credentials_exits_2_with_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "transactionlink_async", "status", "abc"],
        capture_output=True,
        text=True,
        env=_clean_env(),
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: set TRANSACTIONLINK_TOKEN")


# -- exit codes mean what the README says ---------------------------------------------------


def _readme_exit_codes() -> dict[int, str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| exit code | meaning |") :].split("\n\n", 1)[0]
    rows = [line.split("|") for line in table.splitlines()[2:]]
    return {int(cells[1]): cells[2].strip() for cells in rows}


def test_the_readme_documents_every_exit_code() -> None:
    documented = _readme_exit_codes()
    assert set(documented) == {
        EXIT_OK,
        EXIT_FAILED,
        EXIT_USAGE,
        EXIT_API,
        EXIT_INTERNAL,
    }
    assert "API" in documented[EXIT_API]
    assert "install" in documented[EXIT_USAGE]
    epilog = build_parser().epilog or ""
    for code in documented:  # --help says the same
        assert f"{code} " in epilog.split("exit codes:", 1)[1]


def test_a_missing_package_is_an_installation_error_not_an_api_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A broken installation: the package that verifies webhooks cannot be imported.
    monkeypatch.setitem(sys.modules, "cryptography", None)
    assert main(["demo", "--workflows", "3", "--result-mb", "1"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "cryptography" in err
    assert "pip install" in err
    assert "--debug" not in err  # the message already says what to do


def test_an_unexpected_failure_exits_4_and_debug_shows_where(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> int:
        raise RuntimeError("something nobody planned for")

    monkeypatch.setattr(demo_module, "demo", broken)
    assert main(["demo"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err == (
        "error: something nobody planned for; rerun with --debug to see where it came from\n"
    )
    assert main(["demo", "--debug"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "in broken" in err
