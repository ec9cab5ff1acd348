"""The fake's whole-run counts, in process and over `GET /_fake/stats`."""

from __future__ import annotations

import aiohttp
import anyio
import pytest

from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio


async def test_stats_count_per_route_and_survive_journal_trimming() -> None:
    async with (
        FakeTransactionLink(journal_limit=2) as fake,
        aiohttp.ClientSession() as session,
    ):
        auth = {"Authorization": fake.org_token}
        fake.inject("POST", "/workflows", delay=0.05, times=None)

        async def launch() -> str:
            async with session.post(
                f"{fake.base_url}/workflows",
                json={"workflowDefinitionId": "d", "locale": "en", "parameters": {}},
                headers=auth,
            ) as response:
                assert response.status == 200
                execution_id: str = (await response.json())["id"]
                return execution_id

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(launch)
        execution_id = await launch()
        for _ in range(2):
            async with session.get(f"{fake.base_url}/workflows/{execution_id}", headers=auth):
                pass
        async with session.get(f"{fake.base_url}/nowhere", headers=auth):
            pass
        async with session.get(f"{fake.base_url}/_fake/stats") as response:
            served = await response.json()

        assert served == fake.stats()
        assert served["requests"] == {
            "POST /workflows": 4,
            "GET /workflows/{id}": 2,
            "GET <no route>": 1,
        }
        assert served["peak_in_flight"]["POST /workflows"] == 3
        assert served["executions"] == 4
        assert len(fake.journal) < 7  # trimmed, while the counts are whole
        assert fake.count("GET", "/_fake/**") == 0
