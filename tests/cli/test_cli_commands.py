"""`transactionlink status|result|cancel` against the fake server: exit codes and output."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import anyio
import pytest

from transactionlink_async import TransactionLink
from transactionlink_async.testing import FakeTransactionLink

from .conftest import Cli

pytestmark = pytest.mark.anyio


async def launch(client: TransactionLink, definition: str = "kyc") -> str:
    execution = await client.workflows.initialise(workflow_definition_id=definition, locale="en")
    return execution.id


# -- status ---------------------------------------------------------------------------------


async def test_status_shows_the_execution(
    cli: Cli, client: TransactionLink, env: FakeTransactionLink
) -> None:
    execution_id = await launch(client)
    env.set_status(execution_id, "RUNNING")
    ran = await cli("status", execution_id)
    assert ran.code == 0
    assert re.search(rf"^id +{execution_id}$", ran.out, re.MULTILINE)
    assert re.search(r"^status +RUNNING$", ran.out, re.MULTILINE)
    assert re.search(r"^workflow_definition_id +kyc$", ran.out, re.MULTILINE)
    assert ran.err == ""


async def test_status_json_is_one_object(
    cli: Cli, client: TransactionLink, env: FakeTransactionLink
) -> None:
    execution_id = await launch(client)
    env.set_status(execution_id, "COMPLETED")
    ran = await cli("status", execution_id, "--json")
    assert ran.code == 0
    data = ran.json()
    assert data["id"] == execution_id
    assert data["status"] == "COMPLETED"
    assert data["final"] is True
    assert data["workflow_definition_id"] == "kyc"


@pytest.mark.parametrize("status", ["FAILED", "TIMEOUT", "TERMINATED", "EXPIRED", "CANCELLED"])
async def test_status_of_a_failed_execution_exits_1(
    cli: Cli, client: TransactionLink, env: FakeTransactionLink, status: str
) -> None:
    execution_id = await launch(client)
    env.set_status(execution_id, status)
    ran = await cli("--json", "status", execution_id)
    assert ran.code == 1
    assert ran.json()["status"] == status


@pytest.mark.parametrize("status", ["RUNNING", "AWAITING", "PAUSED", "SOMETHING_NEW"])
async def test_status_of_an_unfinished_execution_exits_0(
    cli: Cli, client: TransactionLink, env: FakeTransactionLink, status: str
) -> None:
    execution_id = await launch(client)
    env.set_status(execution_id, status)
    ran = await cli("status", "--json", execution_id)
    assert ran.code == 0
    assert ran.json()["final"] is False


async def test_status_never_prints_an_interactive_token(
    cli: Cli, client: TransactionLink, env: FakeTransactionLink
) -> None:
    env.define_workflow("widget", interactive=True)
    execution = await client.workflows.initialise(workflow_definition_id="widget", locale="en")
    assert execution.token
    for flags in ((), ("--json",)):
        ran = await cli("status", execution.id, *flags)
        assert ran.code == 0
        assert execution.token not in ran.out + ran.err
        assert "app.transactionlink.io/workflow/" in ran.out


async def test_status_of_an_unknown_execution_exits_3_with_the_fingerprint(cli: Cli) -> None:
    ran = await cli("status", "no-such-execution")
    assert ran.code == 3
    assert ran.out == ""
    lines = ran.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: GET ")
    assert "HTTP 404" in lines[0]
    assert "fingerprint " in lines[0]
    assert "Traceback" not in ran.err


async def test_api_error_under_json_gives_an_error_object(
    cli: Cli, env: FakeTransactionLink
) -> None:
    env.inject("GET", "/workflows/*", status=403)
    ran = await cli("status", "abc", "--json")
    assert ran.code == 3
    error = ran.json()["error"]
    assert error["type"] == "PermissionDeniedError"
    assert error["status"] == 403
    assert error["fingerprint"]
    assert error["fingerprint"] in ran.err


async def test_refused_credentials_exit_3_without_showing_them(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, env: FakeTransactionLink
) -> None:
    monkeypatch.delenv("TRANSACTIONLINK_TOKEN")
    monkeypatch.setenv("TRANSACTIONLINK_API_KEY", env.api_key)
    monkeypatch.setenv("TRANSACTIONLINK_API_SECRET", "wrong-secret-value")
    ran = await cli("status", "abc")
    assert ran.code == 3
    assert "HTTP 401" in ran.err
    assert "wrong-secret-value" not in ran.out + ran.err


async def test_unreachable_api_exits_3(cli: Cli, env: FakeTransactionLink) -> None:
    env.inject("GET", "/workflows/*", status=503, times=None)
    ran = await cli("status", "abc")
    assert ran.code == 3
    assert "HTTP 503" in ran.err


@pytest.mark.parametrize(
    "argv",
    [
        ("status",),  # no id
        ("status", "a", "b"),
        ("status", "a/b"),  # not a plain id: refused before sending
        ("status", ""),
        ("nonsense",),
        (),
    ],
)
async def test_status_usage_errors_exit_2(
    cli: Cli, env: FakeTransactionLink, argv: tuple[str, ...]
) -> None:
    ran = await cli(*argv)
    assert ran.code == 2
    assert ran.out == ""
    assert ran.err
    assert "Traceback" not in ran.err
    assert len(env.journal) == 0


async def test_missing_credentials_exit_2(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRANSACTIONLINK_TOKEN")
    ran = await cli("status", "abc")
    assert ran.code == 2
    assert "TRANSACTIONLINK_TOKEN" in ran.err


async def test_base_url_option_wins_over_the_environment(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, env: FakeTransactionLink, client: TransactionLink
) -> None:
    execution_id = await launch(client)
    monkeypatch.setenv("TRANSACTIONLINK_BASE_URL", "http://127.0.0.1:9")
    assert (await cli("status", execution_id, "--base-url", env.base_url)).code == 0
    assert (await cli("--base-url", env.base_url, "status", execution_id)).code == 0


async def test_plain_http_to_a_remote_host_is_a_usage_error(cli: Cli) -> None:
    ran = await cli("status", "abc", "--base-url", "http://api.example.com")
    assert ran.code == 2
    assert "https" in ran.err


async def test_debug_logs_requests_and_shows_the_traceback(
    cli: Cli, client: TransactionLink
) -> None:
    execution_id = await launch(client)
    sdk_logger = logging.getLogger("transactionlink_async")
    handlers = list(sdk_logger.handlers)
    ran = await cli("--debug", "status", execution_id)
    assert ran.code == 0
    assert f"GET /workflows/{execution_id} -> 200" in ran.err
    assert sdk_logger.handlers == handlers  # the debug log ends with the command
    ran = await cli("status", "missing", "--debug")
    assert ran.code == 3
    assert "Traceback" in ran.err
    assert "NotFoundError" in ran.err


# -- cancel ---------------------------------------------------------------------------------


async def test_cancel_cancels(cli: Cli, client: TransactionLink, env: FakeTransactionLink) -> None:
    execution_id = await launch(client)
    env.set_status(execution_id, "RUNNING")
    ran = await cli("cancel", execution_id)
    assert ran.code == 0
    assert ran.out == f"{execution_id}: CANCELLED\n"
    assert env.executions[execution_id]["status"] == "CANCELLED"
    assert env.count("POST", f"/workflows/{execution_id}/cancel") == 1


async def test_cancel_json(cli: Cli, client: TransactionLink) -> None:
    execution_id = await launch(client)
    data = (await cli("cancel", execution_id, "--json")).json()
    assert data["status"] == "CANCELLED"
    assert data["cancelled"] is True


async def test_cancel_of_an_ended_execution_exits_1(
    cli: Cli, client: TransactionLink, env: FakeTransactionLink
) -> None:
    execution_id = await launch(client)
    env.set_status(execution_id, "COMPLETED")
    ran = await cli("cancel", execution_id)
    assert ran.code == 1
    assert "had already ended COMPLETED; nothing was cancelled" in ran.out


async def test_cancel_refused_exits_3(cli: Cli, env: FakeTransactionLink) -> None:
    env.inject("POST", "/workflows/*/cancel", status=403)
    ran = await cli("cancel", "abc")
    assert ran.code == 3
    assert "HTTP 403" in ran.err
    assert "fingerprint " in ran.err


async def test_cancel_usage_error_exits_2(cli: Cli, env: FakeTransactionLink) -> None:
    assert (await cli("cancel")).code == 2
    assert (await cli("cancel", "../x")).code == 2
    assert len(env.journal) == 0


# -- result ---------------------------------------------------------------------------------


async def test_result_prints_a_small_result(
    cli: Cli, client: TransactionLink, env: FakeTransactionLink
) -> None:
    execution_id = await launch(client)
    env.set_status(execution_id, "COMPLETED")
    env.set_result(execution_id, {"decision": "APPROVED", "score": 0.93})
    ran = await cli("result", execution_id)
    assert ran.code == 0
    assert json.loads(ran.out) == {"decision": "APPROVED", "score": 0.93}
    data = (await cli("result", execution_id, "--json")).json()
    assert data["result"] == {"decision": "APPROVED", "score": 0.93}
    assert data["status"] == "COMPLETED"


async def test_result_of_a_failed_execution_exits_1(
    cli: Cli, client: TransactionLink, env: FakeTransactionLink
) -> None:
    execution_id = await launch(client)
    env.set_status(execution_id, "FAILED")
    env.set_result(execution_id, None)
    ran = await cli("result", execution_id)
    assert ran.code == 1
    assert ran.out == f"{execution_id} ended FAILED with no result\n"
    env.set_result(execution_id, {"reason": "document unreadable"})
    ran = await cli("result", execution_id, "--json")
    assert ran.code == 1
    assert ran.json()["result"] == {"reason": "document unreadable"}


async def test_result_of_an_unfinished_execution_exits_1(
    cli: Cli, client: TransactionLink, env: FakeTransactionLink
) -> None:
    execution_id = await launch(client)
    env.set_status(execution_id, "RUNNING")
    ran = await cli("result", execution_id)
    assert ran.code == 1
    assert "no result yet" in ran.out
    assert env.count("GET", "/workflows/*/result") == 0


async def test_result_missing_on_a_completed_execution_exits_3(
    cli: Cli, client: TransactionLink, env: FakeTransactionLink
) -> None:
    execution_id = await launch(client)
    env.set_status(execution_id, "COMPLETED")
    env.set_result(execution_id, None)
    ran = await cli("result", execution_id)
    assert ran.code == 3
    assert "HTTP 404" in ran.err
    assert "fingerprint " in ran.err


async def test_result_too_large_to_print_asks_for_a_file(
    cli: Cli, client: TransactionLink, env: FakeTransactionLink
) -> None:
    execution_id = await launch(client)
    env.set_status(execution_id, "COMPLETED")
    env.set_result(execution_id, b'{"blob": "' + b"x" * (2 * 1024 * 1024) + b'"}')
    ran = await cli("result", execution_id)
    assert ran.code == 2
    assert ran.out == ""
    assert "-o FILE" in ran.err


async def test_result_usage_errors_exit_2(cli: Cli, env: FakeTransactionLink) -> None:
    assert (await cli("result")).code == 2
    ran = await cli("result", "abc", "-o", "/no/such/folder/result.json")
    assert ran.code == 2
    assert "does not exist" in ran.err
    assert len(env.journal) == 0


# -- wait -----------------------------------------------------------------------------------

FAST_POLL = ("--poll-interval", "0.05")


async def test_wait_returns_when_final(
    cli: Cli, client: TransactionLink, env: FakeTransactionLink
) -> None:
    env.define_workflow("kyc", statuses=("RUNNING", "AWAITING", "COMPLETED"))
    execution_id = await launch(client)
    ran = await cli("wait", execution_id, *FAST_POLL)
    assert ran.code == 0
    assert re.fullmatch(rf"{execution_id}: COMPLETED after \d+\.\ds\n", ran.out)
    assert env.count("GET", f"/workflows/{execution_id}") == 3


async def test_wait_json(cli: Cli, client: TransactionLink) -> None:
    execution_id = await launch(client)
    began = time.monotonic()
    data = (await cli("wait", execution_id, "--json", *FAST_POLL)).json()
    took = time.monotonic() - began
    assert data["status"] == "COMPLETED"
    assert data["final"] is True
    # The wait's own duration: at least the first poll interval (0.05 s, less 20 % jitter),
    # at most the whole command.
    assert 0.04 <= data["seconds"] <= took


async def test_wait_for_a_failed_execution_exits_1(
    cli: Cli, client: TransactionLink, env: FakeTransactionLink
) -> None:
    env.define_workflow("kyc", statuses=("RUNNING", "EXPIRED"))
    execution_id = await launch(client)
    ran = await cli("wait", execution_id, *FAST_POLL)
    assert ran.code == 1
    assert f"{execution_id}: EXPIRED after" in ran.out


async def test_wait_timeout_exits_1_with_the_last_status(
    cli: Cli, client: TransactionLink, env: FakeTransactionLink
) -> None:
    env.define_workflow("kyc", statuses=("RUNNING",))
    execution_id = await launch(client)
    ran = await cli("wait", execution_id, "--timeout", "0.3", "--json", *FAST_POLL)
    assert ran.code == 1
    data = ran.json()
    assert data["timed_out"] is True
    assert data["status"] == "RUNNING"
    assert "last status RUNNING" in ran.err


async def test_wait_for_an_unknown_execution_exits_3(cli: Cli) -> None:
    ran = await cli("wait", "no-such-execution", *FAST_POLL)
    assert ran.code == 3
    assert "HTTP 404" in ran.err
    assert "fingerprint " in ran.err


@pytest.mark.parametrize(
    "argv",
    [
        ("wait",),
        ("wait", "x", "--timeout", "0"),
        ("wait", "x", "--timeout", "soon"),
        ("wait", "x", "--poll-interval", "-1"),
        ("wait", "a b"),
    ],
)
async def test_wait_usage_errors_exit_2(
    cli: Cli, env: FakeTransactionLink, argv: tuple[str, ...]
) -> None:
    ran = await cli(*argv)
    assert ran.code == 2
    assert len(env.journal) == 0


# -- run ------------------------------------------------------------------------------------


async def test_run_initialises_waits_and_prints_the_result(
    cli: Cli, env: FakeTransactionLink
) -> None:
    env.define_workflow("kyc", statuses=("RUNNING", "COMPLETED"), result={"decision": "APPROVED"})
    ran = await cli(
        "run", "--definition", "kyc", "--locale", "pl", "--param", "name=Ada",
        "--param", "amount:=100", *FAST_POLL,
    )  # fmt: skip
    assert ran.code == 0, ran.err
    lines = ran.out.splitlines()
    assert lines[0].startswith("initialised ")
    assert lines[0].endswith(" (kyc): INITIALISED")
    assert re.fullmatch(r".+: COMPLETED after \d+\.\ds", lines[1])
    assert json.loads("\n".join(lines[2:])) == {"decision": "APPROVED"}
    [execution] = env.executions.values()
    assert execution["parameters"] == {"name": "Ada", "amount": 100}
    assert execution["locale"] == "pl"


async def test_run_json_is_one_object_with_notes_on_stderr(
    cli: Cli, env: FakeTransactionLink
) -> None:
    ran = await cli("run", "--definition", "anything", "--json", *FAST_POLL)
    assert ran.code == 0
    data = ran.json()
    assert data["status"] == "COMPLETED"
    assert data["result"]["executionId"] == data["id"]
    assert "initialised " in ran.err


async def test_run_shows_the_link_of_an_interactive_workflow_but_not_its_token(
    cli: Cli, env: FakeTransactionLink
) -> None:
    env.define_workflow("widget", interactive=True)
    ran = await cli("run", "--definition", "widget", *FAST_POLL)
    assert ran.code == 0
    assert "link for the person: https://app.transactionlink.io/workflow/" in ran.out
    [execution] = env.executions.values()
    assert execution["token"] not in ran.out + ran.err


async def test_run_of_a_failing_workflow_exits_1(cli: Cli, env: FakeTransactionLink) -> None:
    env.define_workflow("kyc", statuses=("RUNNING", "FAILED"), result=None)
    ran = await cli("run", "--definition", "kyc", *FAST_POLL)
    assert ran.code == 1
    assert ran.out.splitlines()[-1].endswith("ended FAILED with no result")


async def test_run_timeout_exits_1(cli: Cli, env: FakeTransactionLink) -> None:
    env.define_workflow("kyc", statuses=("RUNNING",))
    ran = await cli("run", "--definition", "kyc", "--timeout", "0.3", *FAST_POLL)
    assert ran.code == 1
    assert "still RUNNING" in ran.out


async def test_run_refused_exits_3(cli: Cli, env: FakeTransactionLink) -> None:
    env.inject("POST", "/workflows", status=403)
    ran = await cli("run", "--definition", "kyc")
    assert ran.code == 3
    assert "HTTP 403" in ran.err
    assert "can_run" in ran.err
    assert "fingerprint " in ran.err
    assert len(env.executions) == 0


@pytest.mark.parametrize(
    "argv",
    [
        ("run",),  # --definition is required
        ("run", "--definition", "kyc", "--param", "novalue"),
        ("run", "--definition", "kyc", "--param", "a:=nope"),
        ("run", "--definition", "kyc", "--param", "a=1", "--param", "a=2"),
        ("run", "--definition", " "),
        ("run", "--definition", "kyc", "--locale", ""),
        ("run", "--definition", "kyc", "-o", "/no/such/folder/out.json"),
    ],
)
async def test_run_usage_errors_exit_2(
    cli: Cli, env: FakeTransactionLink, argv: tuple[str, ...]
) -> None:
    ran = await cli(*argv)
    assert ran.code == 2
    assert ran.err
    assert len(env.executions) == 0


# -- results saved to a file ----------------------------------------------------------------

MIB = 1024 * 1024


async def test_result_saves_a_large_result_with_progress(
    cli: Cli, client: TransactionLink, env: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = await launch(client)
    env.set_status(execution_id, "COMPLETED")
    env.set_large_result(execution_id, size=12 * MIB)
    target = tmp_path / "result.json"
    ran = await cli("result", execution_id, "-o", str(target))
    assert ran.code == 0, ran.err
    assert re.fullmatch(
        rf"saved the result of {execution_id} \(12\.0 MiB\) to {re.escape(str(target))} "
        r"in \d+\.\ds \(.+/s\)\n",
        ran.out,
    )
    data = await anyio.Path(target).read_bytes()
    assert len(data) == 12 * MIB
    assert json.loads(data)["records"]
    # Not a terminal: the progress bar prints plain lines, ending at 100 %.
    progress = ran.err.splitlines()
    assert progress[-1].startswith("result [" + "#" * 24 + "] 100.0%  12.0 MiB / 12.0 MiB")
    assert "\r" not in ran.err
    assert len(env.s3.journal) >= 1


async def test_result_to_a_file_json(
    cli: Cli, client: TransactionLink, env: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = await launch(client)
    env.set_status(execution_id, "COMPLETED")
    target = tmp_path / "small.json"
    ran = await cli("result", execution_id, "-o", str(target), "--json")
    assert ran.code == 0
    data = ran.json()
    assert data["path"] == str(target)
    assert data["size"] == (await anyio.Path(target).stat()).st_size
    assert data["status"] == "COMPLETED"


async def test_result_of_a_failed_execution_is_saved_but_exits_1(
    cli: Cli, client: TransactionLink, env: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = await launch(client)
    env.set_status(execution_id, "TERMINATED")
    env.set_result(execution_id, {"reason": "stopped by an operator"})
    target = tmp_path / "r.json"
    ran = await cli("result", execution_id, "-o", str(target))
    assert ran.code == 1
    assert json.loads(await anyio.Path(target).read_text()) == {"reason": "stopped by an operator"}


async def test_result_download_refused_exits_3_and_leaves_no_file(
    cli: Cli, client: TransactionLink, env: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = await launch(client)
    env.set_status(execution_id, "COMPLETED")
    env.inject("GET", "/workflows/*/result", status=403)
    target = tmp_path / "r.json"
    ran = await cli("result", execution_id, "-o", str(target))
    assert ran.code == 3
    assert "HTTP 403" in ran.err
    assert "fingerprint " in ran.err
    assert [p async for p in anyio.Path(tmp_path).iterdir()] == []


async def test_run_saves_the_result_to_a_file(
    cli: Cli, env: FakeTransactionLink, tmp_path: Path
) -> None:
    payload = {"decision": "APPROVED", "blob": "x" * (10 * MIB)}
    env.define_workflow("report", statuses=("RUNNING", "COMPLETED"), result=payload)
    target = tmp_path / "report.json"
    ran = await cli("run", "--definition", "report", "-o", str(target), "--json", *FAST_POLL)
    assert ran.code == 0, ran.err
    data = ran.json()
    assert data["path"] == str(target)
    assert json.loads(await anyio.Path(target).read_text()) == payload
    assert "100.0%" in ran.err


async def test_result_to_a_folder_is_a_usage_error(
    cli: Cli, client: TransactionLink, env: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = await launch(client)
    env.set_status(execution_id, "COMPLETED")
    ran = await cli("result", execution_id, "-o", str(tmp_path))
    assert ran.code == 2
    assert ran.err == f"error: -o {tmp_path} is a folder: give the path of a file to write\n"
    assert env.count("GET", "/workflows/**") == 0
