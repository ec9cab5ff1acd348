"""`transactionlink batch`: a file checked up front, a pipeline that resumes without repeats."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transactionlink_async._cli.batch import result_name
from transactionlink_async._cli.batch_progress import BatchCounts, eta, render_batch
from transactionlink_async.journal import KeyState, SqliteJournal
from transactionlink_async.testing import FakeTransactionLink

from .conftest import Cli

pytestmark = pytest.mark.anyio


def line(n: int, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "key": f"customer-{n}",
        "workflowDefinitionId": "kyc",
        "locale": "en",
        "parameters": {"n": n},
    }
    data.update(changes)
    return data


def write_batch(path: Path, lines: list[Any]) -> Path:
    path.write_text(
        "".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in lines)
    )
    return path


def gets(fake: FakeTransactionLink, glob: str) -> int:
    return fake.count("GET", glob)


@pytest.fixture
def kyc(env: FakeTransactionLink) -> FakeTransactionLink:
    env.define_workflow("kyc", statuses=("RUNNING", "COMPLETED"), seconds_per_status=0.05)
    return env


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({**line(9), "workflowDefinitionID": "x"}), "unknown field"),
        (json.dumps({"workflowDefinitionId": "kyc", "locale": "en"}), "missing 'key'"),
        (json.dumps(line(9, key="")), "bad 'key'"),
        (json.dumps(line(9, locale=" ")), "'locale' must be a non-empty string"),
        (json.dumps(line(9, parameters=[1])), "'parameters' must be a JSON object"),
        (json.dumps(line(1)), "already on line 2"),
    ],
)
async def test_a_bad_line_stops_the_batch_before_anything_is_sent(
    cli: Cli, kyc: FakeTransactionLink, tmp_path: Path, bad: str, problem: str
) -> None:
    lines: list[Any] = [line(0), line(1), line(2), "", bad, line(5)]
    path = write_batch(tmp_path / "batch.jsonl", lines)
    ran = await cli("batch", str(path), "--journal", str(tmp_path / "run.db"))
    assert ran.code == 2
    assert "line 5" in ran.err
    assert problem in ran.err
    assert "nothing was launched" in ran.err
    assert kyc.count("POST", "/workflows") == 0


async def test_a_line_that_is_not_utf8_is_named(
    cli: Cli, kyc: FakeTransactionLink, tmp_path: Path
) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_bytes(json.dumps(line(0)).encode() + b"\n" + b'{"key": "\xff"}\n')
    ran = await cli("batch", str(path), "--journal", str(tmp_path / "run.db"))
    assert ran.code == 2
    assert "line 2: not UTF-8" in ran.err
    assert kyc.count("POST", "/workflows") == 0


async def test_a_rerun_repeats_no_launch_wait_or_download(
    cli: Cli, kyc: FakeTransactionLink, tmp_path: Path
) -> None:
    path = write_batch(tmp_path / "batch.jsonl", [line(n) for n in range(12)])
    results = tmp_path / "results"
    argv = ("--json", "batch", str(path), "--journal", str(tmp_path / "run.db"))
    first = await cli(*argv, "--results", str(results), "--concurrency", "4")
    assert first.code == 0, first.err
    summary = first.json()
    assert summary["launched"] == 12
    assert summary["completed"] == 12
    assert summary["downloaded"] == 12
    assert sorted(p.name for p in results.iterdir()) == sorted(
        f"customer-{n}.json" for n in range(12)
    )
    seen = (
        kyc.count("POST", "/workflows"),
        gets(kyc, "/workflows/*"),
        gets(kyc, "/workflows/*/result"),
    )

    again = await cli(*argv, "--results", str(results))
    assert again.code == 0, again.err
    summary = again.json()
    assert summary["launched"] == 0
    assert summary["resumed"] == 12
    assert summary["downloaded"] == 12
    assert summary["done_before"] == 12
    after = (
        kyc.count("POST", "/workflows"),
        gets(kyc, "/workflows/*"),
        gets(kyc, "/workflows/*/result"),
    )
    assert after == seen, "a rerun launched, polled or downloaded again"


async def test_a_result_saved_but_not_recorded_is_not_downloaded_again(
    cli: Cli, kyc: FakeTransactionLink, tmp_path: Path
) -> None:
    path = write_batch(tmp_path / "batch.jsonl", [line(n) for n in range(3)])
    results = tmp_path / "results"
    argv = ("batch", str(path), "--journal", str(tmp_path / "run.db"))
    assert (await cli(*argv, "--wait")).code == 0
    # A run killed after the file was renamed into place, before the journal heard of it.
    results.mkdir()
    (results / "customer-0.json").write_text('{"saved": "earlier"}')
    ran = await cli(*argv, "--results", str(results))
    assert ran.code == 0, ran.err
    assert gets(kyc, "/workflows/*/result") == 2
    assert (results / "customer-0.json").read_text() == '{"saved": "earlier"}'
    async with SqliteJournal(tmp_path / "run.db") as journal:
        entry = await journal.get("customer-0")
    assert entry is not None
    assert entry.result == str(results / "customer-0.json")


async def test_in_doubt_and_failed_launches_are_listed_and_exit_3(
    cli: Cli, kyc: FakeTransactionLink, tmp_path: Path
) -> None:
    path = write_batch(tmp_path / "batch.jsonl", [line(n) for n in range(4)])
    kyc.inject("POST", "/workflows", drop="after_body")
    kyc.inject("POST", "/workflows", status=400, body={"errors": [{"message": "no such kyc"}]})
    ran = await cli(
        "--json", "batch", str(path), "--journal", str(tmp_path / "run.db"), "--concurrency", "1"
    )
    assert ran.code == 3
    summary = ran.json()
    assert summary["in_doubt"] == 1
    assert summary["launch_failed"] == 1
    assert summary["launched"] == 2
    assert len(summary["in_doubt_keys"]) == 1
    assert summary["errors"][0]["stage"] == "launch"
    assert summary["errors"][0]["error"]["status"] == 400
    # The refused one is sent again by the next run; the one in doubt is not.
    again = await cli("--json", "batch", str(path), "--journal", str(tmp_path / "run.db"))
    assert again.json()["launched"] == 1
    assert again.json()["in_doubt"] == 1
    assert kyc.count("POST", "/workflows") == 5


async def test_a_workflow_that_failed_exits_1(
    cli: Cli, env: FakeTransactionLink, tmp_path: Path
) -> None:
    env.define_workflow("kyc", statuses=("RUNNING", "FAILED"), seconds_per_status=0.05)
    path = write_batch(tmp_path / "batch.jsonl", [line(0)])
    ran = await cli("batch", str(path), "--journal", str(tmp_path / "run.db"), "--wait")
    assert ran.code == 1
    assert "1 failed" in ran.out
    async with SqliteJournal(tmp_path / "run.db") as journal:
        entry = await journal.get("customer-0")
    assert entry is not None
    assert entry.state is KeyState.LAUNCHED
    assert entry.status == "FAILED"


async def test_a_missing_file_or_a_file_as_results_folder_is_a_usage_error(
    cli: Cli, kyc: FakeTransactionLink, tmp_path: Path
) -> None:
    ran = await cli("batch", str(tmp_path / "none.jsonl"), "--journal", str(tmp_path / "j.db"))
    assert ran.code == 2
    path = write_batch(tmp_path / "batch.jsonl", [line(0)])
    (tmp_path / "file").write_text("")
    ran = await cli(
        "batch", str(path), "--journal", str(tmp_path / "j.db"), "--results", str(tmp_path / "file")
    )
    assert ran.code == 2
    assert "not a folder" in ran.err
    assert kyc.count("POST", "/workflows") == 0


# -- the pure parts ---------------------------------------------------------------------------


@given(st.lists(st.text(min_size=1, max_size=40), unique=True, max_size=30))
def test_result_names_are_safe_and_distinct(keys: list[str]) -> None:
    names = [result_name(key) for key in keys]
    assert len(set(names)) == len(names)
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9._~-]{1,205}", name), name
        assert name.endswith(".json")
        assert name not in (".json", "..json")


def test_the_progress_line_and_its_eta() -> None:
    counts = BatchCounts(total=100, launched=30, resumed=20, running=5, finished=40, done=50)
    counts.done_before = 20
    counts.downloaded = 40
    # 30 keys done in 60 s at this run's pace: the 50 left take 100 s.
    assert eta(counts, 60.0) == pytest.approx(100.0)
    text = render_batch(counts, 60.0)
    assert text == (
        "launched 50/100 (20 resumed)  running 5  finished 40  failed 0  downloaded 40  ETA 1:40"
    )
    assert eta(BatchCounts(total=10, done=3, done_before=3), 5.0) is None
    assert render_batch(BatchCounts(total=2, done=2), 1.0).endswith("ETA 0:00")
