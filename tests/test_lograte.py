"""Rate-limited log lines: one per interval at their level, the rest at DEBUG, then a count."""

from __future__ import annotations

import logging

import pytest

from transactionlink_async._lograte import RateLimitedLog


def test_one_line_per_interval_at_its_level_then_the_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="test.lograte")
    now = [0.0]
    log = RateLimitedLog(
        logging.getLogger("test.lograte"), logging.WARNING, interval=60.0, clock=lambda: now[0]
    )
    for n in range(5):
        log.log("rejected %s", n)
    now[0] = 59.9
    log.log("rejected %s", 5)
    now[0] = 60.0
    log.log("rejected %s", 6)
    log.log("rejected %s", 7)
    seen = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert seen == [
        (logging.WARNING, "rejected 0"),
        *[(logging.DEBUG, f"rejected {n}") for n in range(1, 6)],
        (
            logging.WARNING,
            "rejected 6 (5 more like it since the previous one were logged at DEBUG)",
        ),
        (logging.DEBUG, "rejected 7"),
    ]
    assert log.suppressed == 1
