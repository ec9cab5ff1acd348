"""Start-up: the package imports what a feature needs when it is first used."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import transactionlink_async

ROOT = Path(__file__).resolve().parent.parent


def loaded_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after running `statement`."""
    code = f"import sys\n{statement}\nimport json\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_package_loads_almost_nothing() -> None:
    loaded = loaded_after("import transactionlink_async")
    assert not {"aiohttp", "anyio", "attrs", "cattrs"} & loaded
    assert "transactionlink_async._client" not in loaded


def test_a_client_loads_no_converter_downloads_or_waits() -> None:
    loaded = loaded_after(
        "from transactionlink_async import OrganizationToken, TransactionLink\n"
        "TransactionLink(OrganizationToken('tot_x'))"
    )
    assert "aiohttp" in loaded
    unwanted = {
        "cattrs",
        "cryptography",
        "sqlite3",
        "transactionlink_async._download.results",
        "transactionlink_async._batches.wait",
        "transactionlink_async._batches.journaled",
        "transactionlink_async._webhooks.receive",
        "transactionlink_async.coordination._redis",
        "transactionlink_async.journal",
    }
    assert not unwanted & loaded


def test_each_feature_loads_its_modules_at_first_use() -> None:
    loaded = loaded_after(
        "from transactionlink_async import OrganizationToken, TransactionLink\n"
        "tl = TransactionLink(OrganizationToken('tot_x'))\n"
        "tl.webhooks, tl.workflows.wait_many([]), tl.workflows.launch_many([])"
    )
    assert {
        "transactionlink_async._webhooks.receive",
        "transactionlink_async._batches.wait",
        "transactionlink_async._batches.launch",
    } <= loaded
    assert "cattrs" not in loaded  # executions and error bodies are read without it


@pytest.mark.parametrize("name", transactionlink_async.__all__)
def test_every_public_name_is_there(name: str) -> None:
    assert getattr(transactionlink_async, name) is not None
    assert name in dir(transactionlink_async)


def test_submodules_are_attributes_and_unknown_names_are_refused() -> None:
    assert transactionlink_async.errors.APIError is transactionlink_async.APIError
    assert transactionlink_async.models.WorkflowExecution is transactionlink_async.WorkflowExecution
    with pytest.raises(AttributeError, match="no_such_name"):
        transactionlink_async.no_such_name  # noqa: B018


def test_the_client_keeps_one_webhooks_object() -> None:
    tl = transactionlink_async.TransactionLink(transactionlink_async.OrganizationToken("tot_x"))
    assert tl.webhooks is tl.webhooks


def test_views_made_before_the_first_delivery_share_the_clients_webhooks() -> None:
    # Made at first use: a view made before that must still share one key cache and one
    # set of wake-ups with its client, whichever of them asks first.
    tl = transactionlink_async.TransactionLink(transactionlink_async.OrganizationToken("tot_x"))
    view = tl.with_options(timeouts=transactionlink_async.Timeouts(read=5.0))
    nested = view.with_options(retry=transactionlink_async.RetryPolicy(max_attempts=2))
    assert nested.webhooks is tl.webhooks is view.webhooks


def test_the_clients_webhooks_can_be_put_in_place_for_every_view() -> None:
    tl = transactionlink_async.TransactionLink(transactionlink_async.OrganizationToken("tot_x"))
    view = tl.with_options(timeouts=transactionlink_async.Timeouts(read=5.0))
    own = transactionlink_async.Webhooks(tl._handle)
    view.webhooks = own
    assert tl.webhooks is own
    assert view.webhooks is own


def test_a_journaled_batch_and_the_redis_backend_load_at_first_use() -> None:
    loaded = loaded_after(
        "from transactionlink_async import OrganizationToken, TransactionLink\n"
        "from transactionlink_async.coordination import RedisCoordination\n"
        "from transactionlink_async.journal import SqliteJournal\n"
        "tl = TransactionLink(OrganizationToken('tot_x'))\n"
        "tl.workflows.launch_many([], journal=SqliteJournal(':memory:'))"
    )
    assert {
        "transactionlink_async._batches.journaled",
        "transactionlink_async.coordination._redis",
    } <= loaded
