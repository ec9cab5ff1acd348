"""`transactionlink demo`, small: the whole flow runs, and its summary tells the truth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from transactionlink_async._cli import main

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


def test_demo_json_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--result-mb", "3", "--workflows", "4", "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    executions = summary["executions"]
    assert [e["api"] for e in executions] == ["v1", "v3", "v3", "v3", "v3"]
    statuses = {e["workflow"]: e["status"] for e in executions}
    assert statuses == {
        "kyc-v1": "COMPLETED",
        "company-report": "COMPLETED",
        "identity-check": "COMPLETED",
        "sanctions-screening": "FAILED",
        "aml-screening": "COMPLETED",
    }
    assert summary["download"]["bytes"] == 3 * MIB
    assert executions[1]["result_bytes"] == 3 * MIB
    assert summary["tokens"]["authorize"] == 1
    assert summary["tokens"]["refresh"] >= 1  # the 2 s token was renewed early
    assert summary["tokens"]["refused_401"] == 0
    assert summary["webhooks_delivered"] >= 5
    # The person-facing run is polled every 30 s: only its webhook can end it this soon.
    assert executions[2]["seconds"] < 10
    # Progress and notes went to stderr, so stdout stayed one JSON object.
    assert "wait_many" in captured.err
    assert "ended by its webhook" in captured.err


def test_demo_as_a_user_runs_it() -> None:
    """`python -m transactionlink_async demo` with stdout a pipe: plain progress lines."""
    done = subprocess.run(
        [sys.executable, "-m", "transactionlink_async", "demo", "--result-mb", "5",
         "--workflows", "3"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert done.stderr == ""
    assert "\r" not in out  # not a terminal: lines, not a redrawn bar
    assert "[########################] 100.0%  5.0 MiB / 5.0 MiB" in out
    for text in ("launch_many", "wait_many", "ended by its webhook", "renewed early"):
        assert text in out
    table = out[out.index("execution  workflow") :]
    assert "sanctions-screening  v3   FAILED" in table
    assert "done in" in out


@pytest.mark.parametrize("argv", [["--workflows", "2"], ["--result-mb", "0"], ["--workflows", "x"]])
def test_demo_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "expected" in captured.err
