"""The pytest plugin: its fixtures under anyio's plugin and under pytest-asyncio, in a real run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = "transactionlink_async.testing.pytest_plugin"
#: The first line of the README's example test module.
PLUGIN_EXAMPLE = "# tests/test_my_batch.py"

pytest_plugins = ["pytester"]

USER_TESTS = """
import pytest

from transactionlink_async import TransactionLink, WorkflowStatus
from transactionlink_async.testing import FakeTransactionLink

{marker}


async def test_a_client_of_the_fake(
    transactionlink_fake: FakeTransactionLink, transactionlink_client: TransactionLink
) -> None:
    transactionlink_fake.define_workflow("kyc", statuses=("COMPLETED",))
    execution = await transactionlink_client.workflows.initialise(
        workflow_definition_id="kyc", locale="en"
    )
    done = await transactionlink_client.workflows.get(execution.id)
    assert done.status is WorkflowStatus.COMPLETED
    assert transactionlink_fake.count("POST", "/workflows") == 1


@pytest.fixture
def transactionlink_fake_options() -> dict[str, object]:
    return {{"org_token": "tot_chosen-by-the-test"}}


async def test_options_reach_the_fake(transactionlink_fake: FakeTransactionLink) -> None:
    assert transactionlink_fake.org_token == "tot_chosen-by-the-test"


async def test_each_test_gets_a_fresh_fake(transactionlink_fake: FakeTransactionLink) -> None:
    assert transactionlink_fake.journal == []
"""


@pytest.fixture(autouse=True)
def only_named_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    # This checkout's sources, and exactly the plugins each run names.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


def run(pytester: pytest.Pytester, marker: str, *plugins: str, ini: str = "") -> pytest.RunResult:
    pytester.makepyfile(test_user=USER_TESTS.format(marker=marker))
    pytester.makeini(f"[pytest]\nasyncio_default_fixture_loop_scope = function\n{ini}")
    args = [arg for plugin in (PLUGIN, *plugins) for arg in ("-p", plugin)]
    return pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider")


def own_run(pytester: pytest.Pytester) -> pytest.RunResult:
    """Run pytest on the files made, with this plugin and anyio's, under an ini of its own:
    without one, a temporary folder inside this checkout (nox puts TMPDIR there) would
    make pytest read this project's own configuration instead."""
    pytester.makeini("[pytest]\n")
    return pytester.runpytest_subprocess("-p", PLUGIN, "-p", "anyio.pytest_plugin")


#: anyio's own advice: without it, older anyio (4.5 among them), and any with trio installed,
#: run each test on trio too, where the fixtures say they cannot run.
ANYIO_ON_ASYNCIO = """pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
"""


def test_the_fixtures_under_anyio(pytester: pytest.Pytester) -> None:
    result = run(pytester, ANYIO_ON_ASYNCIO, "anyio.pytest_plugin")
    result.assert_outcomes(passed=3)


def test_the_fixtures_under_pytest_asyncio(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_asyncio")
    result = run(pytester, "pytestmark = pytest.mark.asyncio", "pytest_asyncio.plugin")
    result.assert_outcomes(passed=3)


def test_the_fixtures_under_pytest_asyncio_auto_mode(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_asyncio")
    result = run(pytester, "", "pytest_asyncio.plugin", ini="asyncio_mode = auto\n")
    result.assert_outcomes(passed=3)


def test_a_test_on_trio_is_told_to_choose_asyncio(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_trio=(
            "import pytest\n\n\n"
            "@pytest.mark.anyio\n"
            '@pytest.mark.parametrize("anyio_backend", ["trio"])\n'
            "async def test_on_trio(transactionlink_fake):\n"
            "    pass\n"
        ),
    )
    result = own_run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*runs on asyncio only*`anyio_backend` fixture*'asyncio'*"])


def test_a_sync_test_is_told_what_to_do(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_sync="def test_sync(transactionlink_fake):\n    pass\n",
    )
    result = own_run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*needs an async test run by anyio*@pytest.mark.asyncio*"])


SUPPORT = "transactionlink_async.testing._fixture_support"


def test_the_plugin_is_declared_and_cheap_to_import() -> None:
    project = (ROOT / "pyproject.toml").read_text()
    section = project.split("[project.entry-points.pytest11]\n", 1)[1].split("\n\n", 1)[0]
    assert section.strip() == f'transactionlink = "{PLUGIN}"'
    code = (
        f"import sys, {PLUGIN}\n"
        "loaded = [m for m in sys.modules if m.startswith('transactionlink_async.testing.')]\n"
        # The plugin and what its fixtures run; the fake itself loads with the first fixture.
        f"assert sorted(loaded) == [{SUPPORT!r}, {PLUGIN!r}], loaded\n"
        "assert 'aiohttp.web' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)  # noqa: S603


def test_the_readme_example_passes(pytester: pytest.Pytester) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (example,) = [
        c for c in re.findall(r"```python\n(.*?)```", readme, re.S) if PLUGIN_EXAMPLE in c
    ]
    pytester.makepyfile(test_my_batch=example)
    result = own_run(pytester)
    result.assert_outcomes(passed=1)
