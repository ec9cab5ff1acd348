"""The performance targets, one row each: what the SDK measured, its peer, and the verdict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["target_lines"]

Summaries = dict[str, dict[str, Any]]


def _median(summaries: Summaries, table: str, contender: str, metric: str) -> float | None:
    stats = summaries.get(table, {}).get("contenders", {}).get(contender, {}).get(metric)
    return None if stats is None else float(stats["median"])


@attrs.frozen
class Figure:
    """One measured value: where it comes from, and how it reads."""

    table: str
    contender: str
    metric: str
    unit: str

    def value(self, summaries: Summaries) -> float | None:
        return _median(summaries, self.table, self.contender, self.metric)

    def label(self, value: float) -> str:
        return f"{self.contender} {_fmt(value)} {self.unit}".rstrip()


@attrs.frozen
class Target:
    """`ours` against a bound: alone (`peers` empty) or as a ratio to the lowest peer."""

    what: str
    ours: Figure
    bound: float
    at_most: bool
    peers: tuple[Figure, ...] = ()

    def line(self, summaries: Summaries) -> str | None:
        ours = self.ours.value(summaries)
        if ours is None:
            return None
        measured, peer_cell = ours, "-"
        if self.peers:
            found = [(peer.value(summaries), peer) for peer in self.peers]
            known = [(value, peer) for value, peer in found if value]
            if len(known) < len(found):
                return None
            value, peer = min(known, key=lambda pair: pair[0])
            measured = ours / value
            peer_cell = peer.label(value)
        met = measured <= self.bound if self.at_most else measured >= self.bound
        sign = "<=" if self.at_most else ">="
        unit = "x" if self.peers else f" {self.ours.unit}".rstrip()
        shown = f"{measured:.2f}x" if self.peers else _fmt(measured) + unit
        verdict = "met" if met else "**missed**"
        return (
            f"| {self.what} | {self.ours.label(ours)} | {peer_cell} | {shown} | "
            f"{sign} {_fmt(self.bound)}{unit} ({verdict}) |"
        )


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _metric(metric: str, unit: str) -> Callable[[str, str], Figure]:
    """Figures of `metric` (in `unit`) of any table and contender."""
    return lambda table, contender: Figure(table, contender, metric, unit)


_rate = _metric("rate", "calls/s")
_mib_s = _metric("transfer_mib_s", "MiB/s")
_import_ms = _metric("import_min_ms", "ms")


def _compared(
    what: str,
    figure: Callable[[str, str], Figure],
    table: str,
    ours: str,
    bound: float,
    *peers: str,
    at_most: bool = False,
) -> Target:
    """`ours` at least (or `at_most`) `bound` times the lowest of `peers`, of one table."""
    return Target(
        what,
        figure(table, ours),
        bound,
        at_most=at_most,
        peers=tuple(figure(table, peer) for peer in peers),
    )


def _at_scale(what: str, run: str) -> Target:
    """100,000 waits' median finish-to-return at most 1.1 times 1,000's, in runs alike
    (`run`: the tables' suffix, its first word the SDK contender's, e.g. "polling_120s")."""
    contender = "sdk_" + run.split("_")[0]

    def delay(waits: int) -> Figure:
        return Figure(f"wait_{waits}_{run}", contender, "delay_median_s", "s")

    return Target(what, delay(100_000), 1.1, at_most=True, peers=(delay(1000),))


TARGETS = (
    Target(
        "idle wait, 100,000 on one client",
        Figure("wait_idle_100000", "sdk", "rss_kib_per_wait", "KiB"),
        2.0,
        at_most=True,
    ),
    _compared(
        "client CPU per status check, 1,000 waits",
        _metric("cpu_us_per_get", "us"),
        "wait_1000",
        "sdk_polling",
        1.0,
        "naive_1s_poller",
        at_most=True,
    ),
    _at_scale(
        "finish-to-return median, 100,000 waits against 1,000 (120 s window)", "polling_120s"
    ),
    _at_scale(
        "finish-to-return median, 100,000 waits against 1,000, webhooks flowing (300 s window)",
        "webhooks_300s",
    ),
    Target(
        "GETs per execution, webhooks flowing",
        Figure("wait_1000", "sdk_webhooks", "requests_per_execution", ""),
        1.5,
        at_most=True,
    ),
    _compared(
        "download without an ETag, 1 GiB", _mib_s, "download_1g", "sdk_no_md5", 0.95, "aiohttp"
    ),
    _compared("download with an MD5 ETag, 1 GiB", _mib_s, "download_1g", "sdk", 1.0, "aiohttp_md5"),
    _compared(
        "verified download with a core to spare, against its physical limit",
        _mib_s,
        "download_1g_two_cores",
        "sdk",
        0.9,
        "md5_single_core",
        "sdk_no_md5",
    ),
    _compared("calls, 1 at a time", _rate, "calls_c1", "sdk", 0.95, "aiohttp"),
    _compared("calls, 100 concurrent", _rate, "calls_c100", "sdk", 0.95, "aiohttp"),
    _compared(
        "`import transactionlink_async`", _import_ms, "imports", "sdk", 1.1, "aiohttp", at_most=True
    ),
    _compared(
        "importing the client and making one (what a script pays before its first call)",
        _import_ms,
        "imports",
        "sdk_client",
        1.1,
        "aiohttp",
        at_most=True,
    ),
)


def target_lines(summaries: Summaries, targets: tuple[Target, ...] = TARGETS) -> list[str]:
    """The targets' table; a target whose tables have not been recorded is left out."""
    rows = [line for line in (target.line(summaries) for target in targets) if line]
    if not rows:
        return []
    return [
        "",
        "| target | SDK | peer | measured | target |",
        "|---|---|---|---|---|",
        *rows,
    ]
