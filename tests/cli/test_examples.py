"""The scripts in examples/ run green against the fake server, as a user would run them."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import anyio
import httpx
import pytest
from asgi_server import serving

from transactionlink_async import OrganizationToken, TransactionLink
from transactionlink_async.testing import FakeTransactionLink

from .conftest import ENV_NAMES

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def load_example(name: str) -> ModuleType:
    """Import examples/<name>.py as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def example_env(fake: FakeTransactionLink, **extra: str) -> dict[str, str]:
    """The environment a user sets, pointing at the fake; this checkout's package first."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    env.update(
        TRANSACTIONLINK_TOKEN=fake.org_token,
        TRANSACTIONLINK_BASE_URL=fake.base_url,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        **extra,
    )
    return env


async def run_example(
    name: str, *args: str, env: dict[str, str]
) -> subprocess.CompletedProcess[bytes]:
    """`python examples/<name>.py args...` in its own process, while the fake serves here."""
    with anyio.fail_after(60):
        return await anyio.run_process(
            [sys.executable, str(EXAMPLES / f"{name}.py"), *args], env=env, cwd=ROOT, check=False
        )


def set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        if name.startswith("TRANSACTIONLINK_"):
            monkeypatch.setenv(name, value)


# -- the bot --------------------------------------------------------------------------------


async def test_bot_sends_the_link_and_reports_the_decision(fake: FakeTransactionLink) -> None:
    fake.define_workflow(
        "kyc", statuses=("RUNNING", "COMPLETED"), seconds_per_status=0.2, interactive=True
    )
    done = await run_example("bot", "user-7", env=example_env(fake, TRANSACTIONLINK_WORKFLOW="kyc"))
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert "to user-7: Please verify your identity here: https://" in out
    assert "to user-7: Thank you! Decision: APPROVED." in out
    [execution] = fake.executions.values()
    assert execution["parameters"] == {"userId": "user-7"}
    assert execution["status"] == "COMPLETED"


async def test_bot_reports_a_failed_verification(fake: FakeTransactionLink) -> None:
    fake.define_workflow("kyc", statuses=("RUNNING", "FAILED"), seconds_per_status=0.2)
    done = await run_example("bot", "user-8", env=example_env(fake, TRANSACTIONLINK_WORKFLOW="kyc"))
    assert done.returncode == 1
    assert "to user-8: The verification ended: FAILED." in done.stdout.decode()


async def test_bot_cancels_when_the_person_never_finishes(
    fake: FakeTransactionLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = load_example("bot")
    fake.define_workflow("kyc", statuses=("RUNNING",))
    set_env(monkeypatch, example_env(fake, TRANSACTIONLINK_WORKFLOW="kyc"))
    async with TransactionLink.from_env() as tl:
        assert await bot.verify(tl, "user-9", max_wait=0.3) is False
    [execution] = fake.executions.values()
    assert execution["status"] == "CANCELLED"


# -- the batch job --------------------------------------------------------------------------


async def test_batch_job_launches_waits_and_saves_every_result(tmp_path: Path) -> None:
    # A small inline limit: the large result goes through the fake S3's pre-signed link.
    async with FakeTransactionLink(inline_result_limit=1024) as fake:
        big = b'{"records": [' + b",".join(b'{"n": %d}' % i for i in range(20_000)) + b"]}"
        fake.define_workflow(
            "kyc",
            statuses=("RUNNING", "COMPLETED"),
            seconds_per_status=0.1,
            result=lambda execution_id: big,
        )
        customers = [f"c{i}" for i in range(5)]
        env = example_env(fake, TRANSACTIONLINK_WORKFLOW="kyc")
        done = await run_example("batch_job", str(tmp_path / "out"), *customers, env=env)
        assert done.returncode == 0, done.stderr.decode()
        out = done.stdout.decode()
        assert "launched 5 of 5" in out
        for customer in customers:
            assert f"{customer}: COMPLETED, {len(big)} bytes in {customer}.json" in out
            saved = await anyio.Path(tmp_path / "out" / f"{customer}.json").read_bytes()
            assert saved == big
        assert fake.count("POST", "/workflows") == 5
        assert len(fake.s3.journal) >= 5  # each result came through its pre-signed link


async def test_batch_job_reports_what_did_not_complete(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    fake.define_workflow("kyc", statuses=("RUNNING", "FAILED"), seconds_per_status=0.1)
    fake.inject("POST", "/workflows", status=400, times=1)
    env = example_env(fake, TRANSACTIONLINK_WORKFLOW="kyc")
    done = await run_example("batch_job", str(tmp_path), "a", "b", "c", env=env)
    assert done.returncode == 1
    out = done.stdout.decode()
    assert "launched 2 of 3" in out
    assert out.count(": FAILED") == 2
    assert out.count(": not launched: POST ") == 1
    assert [p async for p in anyio.Path(tmp_path).iterdir()] == []


# -- the FastAPI app ------------------------------------------------------------------------


async def test_fastapi_app_verifies_a_user_and_a_webhook_ends_the_wait(
    fake: FakeTransactionLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_app = load_example("fastapi_app")
    # The person is slow: the status only changes when the test says so.
    fake.define_workflow("kyc", statuses=("RUNNING",), interactive=True)
    set_env(monkeypatch, example_env(fake, TRANSACTIONLINK_WORKFLOW="kyc"))
    app = fake_app.create_app()
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        fake.webhooks.subscribe(f"{url}/webhooks/transactionlink")

        started = await http.post("/verifications", json={"user_id": "u-1"})
        assert started.status_code == 201
        execution_id = started.json()["id"]
        assert started.json()["link"].startswith("https://")
        assert "token" not in started.json()
        shown = await http.get(f"/verifications/{execution_id}")
        assert shown.json() == {"id": execution_id, "status": "RUNNING", "final": False}

        pending = await http.get(f"/verifications/{execution_id}/outcome", params={"wait": 0.3})
        assert pending.status_code == 202
        assert pending.json()["status"] == "RUNNING"

        answers: list[httpx.Response] = []

        async def await_outcome() -> None:
            answers.append(await http.get(f"/verifications/{execution_id}/outcome"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(await_outcome)
            await anyio.sleep(0.3)
            finished_at = time.monotonic()
            fake.set_status(execution_id, "COMPLETED")  # the person finishes the workflow
        # The app polls every 10 s at first: only the webhook can end the wait this soon.
        assert time.monotonic() - finished_at < 3
        assert answers[0].status_code == 200
        assert answers[0].json() == {
            "id": execution_id,
            "status": "COMPLETED",
            "final": True,
            "decision": "APPROVED",
        }
        delivery = fake.webhooks.deliveries[-1]
        assert delivery.delivered
        assert delivery.attempts[-1].status == 204

        missing = await http.get("/verifications/no-such-id")
        assert missing.status_code == 404
        assert missing.json()["fingerprint"]
        headers, body = fake.webhooks.signed({"workflowId": execution_id}, "tampered")
        forged = await http.post("/webhooks/transactionlink", headers=headers, content=body)
        assert forged.status_code == 400
    assert app.state.transactionlink.closed  # the lifespan closed the client with the app


async def test_fastapi_app_reports_an_unreachable_api(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_app = load_example("fastapi_app")
    async with FakeTransactionLink() as fake:
        set_env(monkeypatch, example_env(fake, TRANSACTIONLINK_WORKFLOW="kyc"))
        client = TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url)
        app = fake_app.create_app(client)
        fake.inject("GET", "/workflows/*", status=403)
        async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
            refused = await http.get("/verifications/abc")
        assert refused.status_code == 502
        assert refused.json()["fingerprint"]
    assert client.closed
