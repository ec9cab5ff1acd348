"""The download progress display: formatting, live redraws on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transactionlink_async._cli.progress import (
    Progress,
    format_bytes,
    format_duration,
    render_line,
)

MIB = 1024 * 1024


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (100 * MIB, "100.0 MiB")],
)
def test_format_bytes(size: int, text: str) -> None:
    assert format_bytes(size) == text


@given(st.integers(min_value=0, max_value=2**50))
def test_format_bytes_is_short_and_has_a_unit(size: int) -> None:
    text = format_bytes(size)
    number, unit = text.split(" ")
    assert unit in {"B", "KiB", "MiB", "GiB", "TiB"}
    assert float(number) >= 0
    assert len(text) <= 10
    assert float(number) < 1024 or unit == "TiB"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "--:--"), (-1, "--:--"), (float("inf"), "--:--"), (5, "0:05"), (750, "12:30")],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_duration_with_hours() -> None:
    assert format_duration(3723) == "1:02:03"


def test_render_line_with_a_known_size_shows_bar_rate_and_eta() -> None:
    line = render_line(25 * MIB, 100 * MIB, 1.0, width=8)
    assert line.startswith("[##------]  25.0%")
    assert "25.0 MiB / 100.0 MiB" in line
    assert "25.0 MiB/s" in line
    assert line.endswith("ETA 0:03")


def test_render_line_without_a_size_shows_bytes_and_rate() -> None:
    assert render_line(2048, None, 2.0) == "2.0 KiB  1.0 KiB/s"


def test_render_line_at_the_start_has_no_eta() -> None:
    assert render_line(0, 100, 0.0).endswith("ETA --:--")


def test_live_progress_redraws_in_place_at_most_every_redraw_interval() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, live=True, clock=clock, redraw=0.1)
    progress(10, 100)
    progress(20, 100)  # same instant: not drawn
    clock.now += 0.2
    progress(50, 100)
    progress.finish()
    text = stream.getvalue()
    assert text.count("\r") == 3  # first call, the later one, and the final state
    assert text.endswith("\n")
    assert "100" in text.rsplit("\r", 1)[1]
    assert "20.0%" not in text


def test_plain_progress_prints_one_line_per_tenth() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, live=False, clock=clock)
    for done in range(0, 101, 1):
        clock.now += 0.01
        progress(done, 100)
    progress.finish()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11  # 0 %, 10 %, ..., 100 %; finish adds nothing after 100 %
    assert "\r" not in stream.getvalue()
    assert lines[-1].startswith("[" + "#" * 24 + "] 100.0%")


def test_plain_progress_of_unknown_size_prints_on_an_interval_and_at_the_end() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, live=False, clock=clock, line_interval=2.0, label="result")
    for done in range(10):
        clock.now += 0.5
        progress(done * 1000, None)
    progress.finish()
    progress.finish()  # twice is harmless
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4  # at 0.5 s, 2.5 s, 4.5 s, and the final line
    assert all(line.startswith("result ") for line in lines)


def test_a_stream_that_is_not_a_terminal_gets_plain_lines() -> None:
    stream = io.StringIO()
    progress = Progress(stream)
    progress(5, 10)
    progress.finish()
    assert "\r" not in stream.getvalue()


def test_finish_without_progress_draws_nothing() -> None:
    for live in (True, False):
        stream = io.StringIO()
        Progress(stream, live=live).finish()
        assert stream.getvalue() == ""
