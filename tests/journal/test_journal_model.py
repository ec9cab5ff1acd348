"""Both journals follow one model of the per-key state machine, whatever the order of calls."""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from transactionlink_async.journal import Journal, KeyState, RedisJournal, SqliteJournal
from transactionlink_async.models import WorkflowExecution

T = TypeVar("T")

KEYS = ("a", "b", "c")
EXECUTION_IDS = ("x1", "x2")
STATUSES = ("COMPLETED", "FAILED")
RESULTS = ("/results/1.json", "/results/2.json")
RUNS = ("run-1", "run-2")
#: Which journal a rule acts on, taken modulo the machine's number of journals.
SLOTS = st.integers(min_value=0, max_value=1)


@attrs.define
class Expected:
    """The model's record of one key: written independently of the journal's own rules."""

    state: str
    owner: int | None = None
    execution_id: str | None = None
    has_execution: bool = False
    status: str | None = None
    result: str | None = None


class JournalMachine(RuleBasedStateMachine):
    """Journals in `slots` (each reopened as a new owner by `restart`) on one store."""

    slots: tuple[int, ...] = (0,)

    def __init__(self, open_journal: Callable[[], Journal]) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.open_journal = open_journal
        self.owners = itertools.count()
        self.journals: dict[int, Journal] = {}
        self.owner_of: dict[int, int] = {}
        for slot in self.slots:
            self._open(slot)
        self.model: dict[str, Expected] = {}
        # A run belongs to one journal (launch_many makes a new id each time).
        self.seen: dict[str, set[str]] = {}

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def _open(self, slot: int) -> None:
        self.journals[slot] = self.open_journal()
        self.owner_of[slot] = next(self.owners)

    def teardown(self) -> None:
        for journal in self.journals.values():
            self.run(journal.aclose())
        self.loop.close()

    def live(self, owner: int | None) -> bool:
        return owner in self.owner_of.values()

    def claimed_by(self, key: str, slot: int) -> bool:
        expected = self.model.get(key)
        return (
            expected is not None
            and expected.state == "claimed"
            and expected.owner == self.owner_of[slot]
        )

    # -- the rules ---------------------------------------------------------------------------

    @rule(slot=SLOTS, key=st.sampled_from(KEYS))
    def claim(self, slot: int, key: str) -> None:
        slot %= len(self.slots)
        claim = self.run(self.journals[slot].claim(key))
        expected = self.model.get(key)
        should_win = expected is None or expected.state == "released"
        assert claim.won == should_win
        if should_win:
            self.model[key] = Expected("claimed", owner=self.owner_of[slot])
        assert claim.entry is not None

    @rule(slot=SLOTS, key=st.sampled_from(KEYS), xid=st.sampled_from(EXECUTION_IDS))
    def launched(self, slot: int, key: str, xid: str) -> None:
        slot %= len(self.slots)
        execution = WorkflowExecution(id=xid, status="CREATED", token="secret-token")
        self.run(self.journals[slot].record_launched(key, execution))
        expected = self.model.get(key)
        if expected is not None and expected.state == "launched" and expected.execution_id == xid:
            expected.has_execution = True
        else:
            self.model[key] = Expected("launched", execution_id=xid, has_execution=True)

    @rule(slot=SLOTS, key=st.sampled_from(KEYS), doubt=st.booleans())
    def released_or_in_doubt(self, slot: int, key: str, doubt: bool) -> None:
        slot %= len(self.slots)
        journal = self.journals[slot]
        if doubt:
            self.run(journal.record_in_doubt(key))
        else:
            self.run(journal.record_released(key))
        if self.claimed_by(key, slot):
            self.model[key] = Expected("in_doubt" if doubt else "released")

    @rule(slot=SLOTS, key=st.sampled_from(KEYS), status=st.sampled_from(STATUSES))
    def finished(self, slot: int, key: str, status: str) -> None:
        slot %= len(self.slots)
        self.run(self.journals[slot].record_status(key, status))
        expected = self.model.get(key)
        if expected is not None and expected.state == "launched":
            expected.status = status

    @rule(slot=SLOTS, key=st.sampled_from(KEYS), result=st.sampled_from(RESULTS))
    def downloaded(self, slot: int, key: str, result: str) -> None:
        slot %= len(self.slots)
        self.run(self.journals[slot].record_result(key, result))
        expected = self.model.get(key)
        if expected is not None and expected.state == "launched":
            expected.result = result

    @rule(
        slot=SLOTS,
        key=st.sampled_from(KEYS),
        xid=st.one_of(st.none(), st.sampled_from(EXECUTION_IDS)),
    )
    def resolve(self, slot: int, key: str, xid: str | None) -> None:
        slot %= len(self.slots)
        expected = self.model.get(key)
        if expected is not None and expected.state == "claimed" and self.live(expected.owner):
            with pytest.raises(ValueError, match="being launched right now"):
                self.run(self.journals[slot].resolve(key, xid))
            return
        self.run(self.journals[slot].resolve(key, xid))
        if xid is None:
            self.model[key] = Expected("released")
        elif not (
            expected is not None and expected.state == "launched" and expected.execution_id == xid
        ):
            self.model[key] = Expected("launched", execution_id=xid)

    @rule(
        slot=SLOTS,
        run=st.sampled_from(RUNS),
        keys=st.lists(st.sampled_from(KEYS), max_size=4),
    )
    def lookup(self, slot: int, run: str, keys: list[str]) -> None:
        slot %= len(self.slots)
        run = f"{run}-{self.owner_of[slot]}"
        lookups = self.run(self.journals[slot].lookup(keys, run=run))
        seen = self.seen.setdefault(run, set())
        repeated = []
        for key in keys:
            repeated.append(key in seen)
            seen.add(key)
        assert [found.repeated for found in lookups] == repeated
        assert [self.view(found.entry) for found in lookups] == [self.expected(k) for k in keys]

    @rule(slot=SLOTS, run=st.sampled_from(RUNS))
    def end_run(self, slot: int, run: str) -> None:
        slot %= len(self.slots)
        run = f"{run}-{self.owner_of[slot]}"
        self.run(self.journals[slot].end_run(run))
        self.seen.pop(run, None)

    @rule(slot=SLOTS)
    def restart(self, slot: int) -> None:
        """The batch behind this journal ends (or dies): its claims are in doubt now."""
        slot %= len(self.slots)
        self.run(self.journals[slot].aclose())
        self._open(slot)

    # -- what must hold after every step -----------------------------------------------------

    def expected(self, key: str) -> tuple[Any, ...] | None:
        expected = self.model.get(key)
        if expected is None:
            return None
        state = expected.state
        if state == "claimed" and not self.live(expected.owner):
            state = "in_doubt"
        return (
            state,
            expected.execution_id,
            expected.has_execution,
            expected.status,
            expected.result,
        )

    @staticmethod
    def view(entry: Any) -> tuple[Any, ...] | None:
        if entry is None:
            return None
        assert isinstance(entry.state, KeyState)
        if entry.execution is not None:
            assert entry.execution.token is None, "a secret reached the journal"
            assert entry.execution.id == entry.execution_id
        return (
            entry.state.value,
            entry.execution_id,
            entry.execution is not None,
            None if entry.status is None else str(entry.status),
            entry.result,
        )

    @invariant()
    def every_journal_shows_the_model(self) -> None:
        for journal in self.journals.values():
            entries = self.run(journal.get_many(list(KEYS)))
            assert [self.view(e) for e in entries] == [self.expected(k) for k in KEYS]
            listed = self.run(_collect(journal))
            assert {e.key: self.view(e) for e in listed} == {
                k: self.expected(k) for k in KEYS if k in self.model
            }


async def _collect(journal: Journal) -> list[Any]:
    return [entry async for entry in journal.entries()]


class TwoProcesses(JournalMachine):
    slots = (0, 1)


MODEL_SETTINGS = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def test_the_sqlite_journal_follows_the_model() -> None:
    with tempfile.TemporaryDirectory() as folder:
        files = (Path(folder) / f"{n}.db" for n in itertools.count())

        def machine() -> JournalMachine:
            path = next(files)
            return JournalMachine(lambda: SqliteJournal(path))

        # Any factory of machines will do; the stubs ask for the class.
        run_state_machine_as_test(machine, settings=MODEL_SETTINGS)  # type: ignore[arg-type]


def test_redis_journals_shared_by_two_processes_follow_the_model(redis_url: str) -> None:
    def machine() -> JournalMachine:
        name = uuid.uuid4().hex
        return TwoProcesses(lambda: RedisJournal(redis_url, name))

    run_state_machine_as_test(machine, settings=MODEL_SETTINGS)  # type: ignore[arg-type]
