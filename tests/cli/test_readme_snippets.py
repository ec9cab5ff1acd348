"""Every Python snippet of the README runs against the fake server and passes `mypy --strict`.

Each snippet is marked `<!-- test: NAME -->` in the README. Its harness here gives what
the snippet leaves to the reader (a client, an execution id, a `send_message` of the
bot...) with real values to run and real types to check. Module snippets run as modules,
the batch script as a script in its own process, fragments (top-level `await`) as the
body of an async function that takes the free names as parameters.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import anyio
import attrs
import httpx
import pytest
import trustme
from starlette.requests import Request

from transactionlink_async import OrganizationToken, RateLimit, TransactionLink
from transactionlink_async.coordination import RedisCoordination
from transactionlink_async.testing import FakeTransactionLink

from .conftest import ENV_NAMES

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
NAMED = dict(re.findall(r"<!-- test: ([a-z-]+) -->\n```python\n(.*?)```", README, flags=re.S))
ALL_PYTHON = re.findall(r"```python\n(.*?)```", README, flags=re.S)

Run = Callable[[FakeTransactionLink, dict[str, Any], Path], Awaitable[None]]


@attrs.frozen
class Harness:
    """How one snippet is completed, type-checked and run."""

    kind: Literal["module", "script", "fragment"]
    run: Run
    prelude: str = ""
    #: A fragment's free names, as the typed parameters of the function it becomes.
    params: str = ""

    def source(self, code: str) -> str:
        if self.kind != "fragment":
            return self.prelude + code
        body = textwrap.indent(code, "    ")
        return (
            f"{self.prelude}\n\nasync def snippet({self.params}) -> dict[str, Any]:\n"
            f"{body}    return locals()\n"
        )


def client(fake: FakeTransactionLink) -> TransactionLink:
    return TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url)


def load(source: str, name: str) -> dict[str, Any]:
    """The snippet executed as a module of its own; its namespace."""
    module = ModuleType(f"readme_{name.replace('-', '_')}")
    exec(compile(source, f"<README {name}>", "exec"), module.__dict__)  # noqa: S102 - the README
    return module.__dict__


@asynccontextmanager
async def asgi(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the app, with its lifespan running (as a server would run it)."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://app") as http,
    ):
        yield http


async def signed_delivery(http: httpx.AsyncClient, fake: FakeTransactionLink, path: str) -> None:
    headers, body = fake.webhooks.signed({"workflowId": "w-1", "status": "COMPLETED"})
    assert (await http.post(path, headers=headers, content=body)).status_code == 204
    forged, body = fake.webhooks.signed({"workflowId": "w-1"}, "tampered")
    assert (await http.post(path, headers=forged, content=body)).status_code == 400


# -- the harnesses --------------------------------------------------------------------------


async def run_fastapi_quickstart(fake: FakeTransactionLink, ns: dict[str, Any], _: Path) -> None:
    fake.define_workflow("kyc", statuses=("RUNNING",), interactive=True)
    async with asgi(ns["app"]) as http:
        started = await http.post("/verifications", params={"user_id": "u-1"})
        assert started.status_code == 200, started.text
        answer = started.json()
        assert set(answer) == {"id", "link"}
        assert answer["link"].startswith("https://")
        fake.set_status(answer["id"], "COMPLETED")
        outcome = await http.get(f"/verifications/{answer['id']}/outcome")
        assert outcome.json() == {"status": "COMPLETED"}
        await signed_delivery(http, fake, "/webhooks/transactionlink")
    assert ns["app"].state.transactionlink.closed


async def run_batch_quickstart(
    fake: FakeTransactionLink, source: dict[str, Any], cwd: Path
) -> None:
    fake.define_workflow(
        "kyc", statuses=("RUNNING", "COMPLETED"), seconds_per_status=0.1, result={"ok": True}
    )
    script = cwd / "batch.py"
    script.write_text(source["__source__"], encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    env.update(
        TRANSACTIONLINK_TOKEN=fake.org_token,
        TRANSACTIONLINK_BASE_URL=fake.base_url,
        PYTHONPATH=str(ROOT),
    )
    with anyio.fail_after(60):  # as pasted: `python batch.py` in an empty folder
        done = await anyio.run_process([sys.executable, str(script)], cwd=cwd, env=env, check=False)
    assert done.returncode == 0, done.stderr.decode()
    saved = sorted((cwd / "results").iterdir())
    assert [p.name for p in saved] == sorted(f"{i}.json" for i in fake.executions)
    assert all(json.loads(p.read_text()) == {"ok": True} for p in saved)
    assert done.stdout.decode().count(" bytes\n") == 2


async def run_bot_quickstart(fake: FakeTransactionLink, ns: dict[str, Any], _: Path) -> None:
    fake.define_workflow(
        "kyc",
        statuses=("RUNNING", "COMPLETED"),
        seconds_per_status=0.1,
        interactive=True,
        result={"decision": "APPROVED"},
    )
    async with client(fake) as tl:
        assert await ns["verify"](tl, "user-7") is True
    [(user, text)] = ns["SENT"]
    assert user == "user-7"
    assert text.startswith("Please verify here: https://")


async def run_waiting(fake: FakeTransactionLink, ns: dict[str, Any], _: Path) -> None:
    execution_id = fake.create_execution()
    ids = [fake.create_execution() for _ in range(3)]
    async with client(fake) as tl:
        done = await ns["snippet"](tl, execution_id, ids, [{"n": 1}, {"n": 2}])
    assert str(done["execution"].status) == "COMPLETED"
    assert fake.count("POST", "/workflows") == 2


async def run_webhook_verify(fake: FakeTransactionLink, ns: dict[str, Any], _: Path) -> None:
    headers, body = fake.webhooks.signed({"workflowId": "w-1", "status": "COMPLETED"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    request = Request({"type": "http", "method": "POST", "path": "/", "headers": raw}, receive)
    async with client(fake) as tl:
        done = await ns["snippet"](tl, request, headers, body)
    assert done["event"].execution_id == "w-1"


async def run_fastapi_webhooks(fake: FakeTransactionLink, ns: dict[str, Any], _: Path) -> None:
    async with asgi(ns["app"]) as http:
        await signed_delivery(http, fake, "/webhooks/transactionlink")
    assert ns["tl"].closed


async def run_results(fake: FakeTransactionLink, ns: dict[str, Any], cwd: Path) -> None:
    result = {"records": [{"amount": 1.25}, {"amount": 2}]}
    execution_id = fake.create_execution(result)
    async with client(fake) as tl:  # it downloads to "result.json", in `cwd`
        done = await ns["snippet"](tl, execution_id)
    assert done["result"] == result
    assert json.loads((cwd / "result.json").read_text()) == result
    assert done["done"].size == (cwd / "result.json").stat().st_size


async def run_configuration(fake: FakeTransactionLink, ns: dict[str, Any], _: Path) -> None:
    done = await ns["snippet"](fake.create_execution())
    assert str(done["execution"].status) == "COMPLETED"
    assert done["tl"].closed


async def run_many_workers(fake: FakeTransactionLink, ns: dict[str, Any], _: Path) -> None:
    done = await ns["snippet"](fake.api_key, fake.api_secret)
    tl = done["tl"]
    assert isinstance(tl.coordination, RedisCoordination)
    assert tl.coordination.namespace == "transactionlink"
    await tl.aclose()  # nothing was sent: Redis is only reached on first use


async def run_batch_workers(fake: FakeTransactionLink, ns: dict[str, Any], _: Path) -> None:
    done = await ns["snippet"]("redis://127.0.0.1:6379/0")
    ctx: dict[str, Any] = {}
    await done["startup"](ctx)
    tl = ctx["tl"]
    assert isinstance(tl.coordination, RedisCoordination)
    assert tl.rate_limit == RateLimit(50)
    await tl.aclose()  # nothing was sent: Redis is only reached on first use


async def run_testing_kit(fake: FakeTransactionLink, ns: dict[str, Any], _: Path) -> None:
    # What the plugin's fixtures give the test: the fake and a client of it.
    async with client(fake) as tl:
        await ns["test_the_batch_survives_rate_limits"](fake, tl)


async def run_proxies(fake: FakeTransactionLink, ns: dict[str, Any], cwd: Path) -> None:
    ca_file = cwd / "corporate-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))
    done = await ns["snippet"](str(ca_file))
    assert done["tl"].base_url == fake.base_url
    await done["tl"].aclose()


async def run_with_options(fake: FakeTransactionLink, ns: dict[str, Any], cwd: Path) -> None:
    execution_id = fake.create_execution({"ok": True})
    async with client(fake) as tl:
        done = await ns["snippet"](tl, execution_id)
    assert done["patient"].closed
    assert json.loads((cwd / "result.json").read_text()) == {"ok": True}


async def run_raw_response(fake: FakeTransactionLink, ns: dict[str, Any], _: Path) -> None:
    execution_id = fake.create_execution()
    async with client(fake) as tl:
        done = await ns["snippet"](tl, execution_id)
    assert done["answer"].status == 200


async def run_hooks(fake: FakeTransactionLink, ns: dict[str, Any], _: Path) -> None:
    execution_id = fake.create_execution()
    async with client(fake) as tl:
        done = await ns["snippet"](tl)
        await tl.workflows.get(execution_id)
    assert done["answers"][200] == 1


async def run_tracing(fake: FakeTransactionLink, ns: dict[str, Any], _: Path) -> None:
    done = await ns["snippet"]()
    async with done["tl"] as tl:
        await tl.workflows.get(fake.create_execution())


async def run_types(fake: FakeTransactionLink, ns: dict[str, Any], _: Path) -> None:
    async with client(fake) as tl:
        execution = await tl.workflows.get(fake.create_execution())
    assert (await ns["snippet"](execution))["outcome"] == "done"


async def run_durable_batch(fake: FakeTransactionLink, ns: dict[str, Any], cwd: Path) -> None:
    rows = [{"customerId": f"c-{n}"} for n in range(5)]
    await ns["snippet"](rows)
    assert fake.count("POST", "/workflows") == 5
    assert (cwd / "run.db").exists()
    await ns["snippet"](rows)  # the same batch again: everything resumes, nothing is sent
    assert fake.count("POST", "/workflows") == 5


FRAGMENT_IMPORTS = """\
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from transactionlink_async import TransactionLink
"""

# The bot's messenger: what it sent is kept for the test.
SEND_MESSAGE = """\
SENT: list[tuple[str, str]] = []


async def send_message(user_id: str, text: str) -> None:
    SENT.append((user_id, text))


"""

HARNESSES: dict[str, Harness] = {
    "fastapi-quickstart": Harness("module", run_fastapi_quickstart),
    "batch-quickstart": Harness("script", run_batch_quickstart),
    "bot-quickstart": Harness(
        "module",
        run_bot_quickstart,
        prelude=SEND_MESSAGE,
    ),
    "waiting": Harness(
        "fragment",
        run_waiting,
        prelude=FRAGMENT_IMPORTS,
        params="tl: TransactionLink, execution_id: str, ids: list[str], rows: list[dict[str, Any]]",
    ),
    "webhook-verify": Harness(
        "fragment",
        run_webhook_verify,
        prelude=FRAGMENT_IMPORTS,
        params="tl: TransactionLink, request: Request, headers: Mapping[str, str], body: bytes",
    ),
    "fastapi-webhooks": Harness("module", run_fastapi_webhooks),
    "results": Harness(
        "fragment",
        run_results,
        prelude=FRAGMENT_IMPORTS,
        params="tl: TransactionLink, execution_id: str",
    ),
    "configuration": Harness(
        "fragment", run_configuration, prelude=FRAGMENT_IMPORTS, params="execution_id: str"
    ),
    "testing-kit": Harness("module", run_testing_kit),
    "proxies": Harness("fragment", run_proxies, prelude=FRAGMENT_IMPORTS, params="ca_file: str"),
    "with-options": Harness(
        "fragment",
        run_with_options,
        prelude=FRAGMENT_IMPORTS,
        params="tl: TransactionLink, execution_id: str",
    ),
    "raw-response": Harness(
        "fragment",
        run_raw_response,
        prelude=FRAGMENT_IMPORTS,
        params="tl: TransactionLink, execution_id: str",
    ),
    "hooks": Harness("fragment", run_hooks, prelude=FRAGMENT_IMPORTS, params="tl: TransactionLink"),
    "tracing": Harness("fragment", run_tracing, prelude=FRAGMENT_IMPORTS),
    "types": Harness(
        "fragment",
        run_types,
        prelude=FRAGMENT_IMPORTS + "from transactionlink_async import WorkflowExecution\n",
        params="execution: WorkflowExecution",
    ),
    "many-workers": Harness(
        "fragment", run_many_workers, prelude=FRAGMENT_IMPORTS, params="key: str, secret: str"
    ),
    "many-workers-batch": Harness(
        "fragment", run_batch_workers, prelude=FRAGMENT_IMPORTS, params="redis_url: str"
    ),
    "durable-batch": Harness(
        "fragment", run_durable_batch, prelude=FRAGMENT_IMPORTS, params="rows: list[dict[str, Any]]"
    ),
}


def test_every_python_snippet_has_a_harness() -> None:
    assert len(NAMED) == len(ALL_PYTHON), "mark each ```python block with <!-- test: NAME -->"
    assert set(NAMED) == set(HARNESSES)


@pytest.mark.timeout(300)
def test_the_snippets_pass_mypy_strict(tmp_path: Path) -> None:
    files = []
    for name, code in NAMED.items():
        path = tmp_path / f"readme_{name.replace('-', '_')}.py"
        path.write_text(HARNESSES[name].source(code), encoding="utf-8")
        files.append(str(path))
    # In its own process: mypy raises the interpreter's recursion limit for good.
    done = subprocess.run(  # noqa: S603 - this interpreter and our own arguments
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(ROOT / ".mypy_cache"), "--strict", *files],
        capture_output=True, text=True, cwd=ROOT, timeout=280, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", sorted(HARNESSES))
async def test_the_snippet_runs_against_the_fake(
    name: str, fake: FakeTransactionLink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for env_name in ENV_NAMES:
        monkeypatch.delenv(env_name, raising=False)
    monkeypatch.setenv("TRANSACTIONLINK_TOKEN", fake.org_token)
    monkeypatch.setenv("TRANSACTIONLINK_BASE_URL", fake.base_url)
    monkeypatch.chdir(tmp_path)  # where a snippet's relative paths go
    harness = HARNESSES[name]
    source = harness.source(NAMED[name])
    namespace = {"__source__": source} if harness.kind == "script" else load(source, name)
    with anyio.fail_after(60):
        await harness.run(fake, namespace, tmp_path)
