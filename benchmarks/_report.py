"""The combined report: benchmarks/results/README.md, and the README's Benchmarks section."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from ._harness import BEFORE_SUFFIX, FLOOR, RESULTS, ROOT, machine
from ._targets import target_lines

__all__ = ["headline", "update_readme", "write_results_readme"]

# The suite's own runs first, in this order; then the scaling runs; then anything else.
ORDER = [
    "calls_c1",
    "calls_c100",
    "instructions_c1",
    "instructions_c100",
    "launch_c100",
    "wait_1000",
    "download_1g",
    "json_items_256m",
    "webhooks_verify_small",
    "webhooks_verify_64k",
]

#: What each ratio should reach (the SDK over its peer, both ways "higher is better").
TARGETS = {
    ("calls_c1", "sdk/aiohttp"): 0.95,
    ("calls_c1", "sdk/httpx"): 1.2,
    ("calls_c100", "sdk/aiohttp"): 0.95,
    ("calls_c100", "sdk/httpx"): 1.2,
}

START = "<!-- benchmarks:start (written by python -m benchmarks --readme) -->"
END = "<!-- benchmarks:end -->"


def _summaries() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(RESULTS.glob("*.json")):
        summary = json.loads(path.read_text())
        found[summary["name"]] = summary
    return found


def _ordered(names: list[str]) -> list[str]:
    main = [n for n in ORDER if n in names]
    scaling = sorted(
        (n for n in names if n not in main and ("scaling" in n or n.startswith("download_"))),
        key=_size_key,
    )
    rest = sorted(n for n in names if n not in main and n not in scaling)
    return main + scaling + rest


def _size_key(name: str) -> tuple[str, float]:
    match = re.search(r"_(\d+)([mg]?)", name)
    if match is None:
        return name, 0.0
    number = float(match.group(1)) * (1024 if match.group(2) == "g" else 1)
    return name.split("_")[0], number


def _median(summary: dict[str, Any], contender: str, metric: str) -> float | None:
    stats = summary["contenders"].get(contender, {}).get(metric)
    return None if stats is None else float(stats["median"])


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


# Download pairs compared like for like: MD5 checked on both sides, or on neither.
DOWNLOAD_PAIRS = [
    ("sdk", "aiohttp_md5"),
    ("sdk_no_md5", "aiohttp"),
    ("sdk_no_md5", "httpx"),
    ("sdk", "naive_json"),
]


def _pairs(name: str, summary: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(ours, peer, ours/peer) rows of one table, oriented so that higher is better."""
    metric = summary["metric"]
    if name.startswith("download_"):
        rows = []
        for ours, peer in DOWNLOAD_PAIRS:
            a, b = _median(summary, ours, metric), _median(summary, peer, metric)
            if a is not None and b:
                rows.append((ours, peer, a / b))
        return rows
    rows = []
    for ratio_name, ratio in summary["ratios"].items():
        ours, peer = ratio_name.split("/", 1)
        rows.append((ours, peer, float(ratio)))
    return rows


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _limit_key(name: str) -> tuple[int, int, str]:
    """The launch runs by R then answer delay, the other runs after them."""
    match = re.fullmatch(r"ratelimit_r(\d+)_d(\d+)ms", name)
    if match is None:
        return (1_000_000, 0, name)
    return (int(match.group(1)), int(match.group(2)), name)


def _limit_label(name: str) -> str:
    """ "ratelimit_r100_d1ms" -> "R = 100/s, answers in 1 ms"; the initialise run by name."""
    if name == "ratelimit_initialise_150":
        return "150 initialise at 25/s, R = 10/s"
    match = re.fullmatch(r"ratelimit_r(\d+)_d(\d+)ms", name)
    if match is None:
        return name.removeprefix("ratelimit_").replace("_", " ")
    return f"R = {match.group(1)}/s, answers in {match.group(2)} ms"


def headline(summaries: dict[str, dict[str, Any]] | None = None) -> str:
    """The short tables: ratios against their targets, waiting, and the scaling runs."""
    summaries = _summaries() if summaries is None else summaries
    lines = [
        "| benchmark | measure | SDK | peer | SDK / peer | target |",
        "|---|---|---|---|---|---|",
    ]
    for name in [n for n in ORDER if n in summaries and not n.startswith("wait_")]:
        summary = summaries[name]
        metric = summary["metric"]
        for ours, peer, ratio in _pairs(name, summary):
            target = TARGETS.get((name, f"{ours}/{peer}"))
            verdict = (
                ""
                if target is None
                else f">= {target:.2f}x " + ("(met)" if ratio >= target else "(**missed**)")
            )
            lines.append(
                f"| {name} | {metric} ({summary['unit']}) | "
                f"{ours} {_fmt(_median(summary, ours, metric))} | "
                f"{peer} {_fmt(_median(summary, peer, metric))} | {ratio:.2f}x | {verdict} |"
            )
    lines += target_lines(summaries)
    waits = [n for n in _ordered(list(summaries)) if n.startswith("wait_") and "_idle_" not in n]
    if waits:
        lines += [
            "",
            "| waits | contender | finish-to-return median (s) | p99 (s) | "
            "GETs per execution | client CPU per wait (ms) | client CPU per GET (us) | "
            "peak RSS (MiB) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name in waits:
            summary = summaries[name]
            for contender in summary["contenders"]:
                cells = [
                    _fmt(_median(summary, contender, m))
                    for m in (
                        "delay_median_s",
                        "delay_p99_s",
                        "requests_per_execution",
                        "cpu_ms_per_wait",
                        "cpu_us_per_get",
                        "peak_rss_mib",
                    )
                ]
                label = (
                    name.removeprefix("wait_")
                    .replace("_scaling", " (20 s window)")
                    .replace("_polling_120s", " (120 s window)")
                    .replace("_webhooks_300s", " (webhooks, 300 s window)")
                )
                lines.append(f"| {label} | {contender} | " + " | ".join(cells) + " |")
    lines += _idle_lines(summaries)
    limits = sorted((n for n in summaries if n.startswith("ratelimit_")), key=_limit_key)
    if limits:
        lines += [
            "",
            "| rate limit | contender | budget used | budget used, second half | "
            "answered 429 (/ launches) | failed | p95 latency (s) |",
            "|---|---|---|---|---|---|---|",
        ]
        for name in limits:
            summary = summaries[name]
            for contender in summary["contenders"]:
                median = functools.partial(_median, summary, contender)
                cells = [
                    _percent(median("budget_used")),
                    _percent(median("steady_budget_used")),
                    f"{_count(median('answered_429'))} ({_percent(median('share_429'))})",
                    _count(median("failed")),
                    _fmt(median("p95_latency_s")),
                ]
                lines.append(f"| {_limit_label(name)} | {contender} | " + " | ".join(cells) + " |")
    downloads = sorted(
        (n for n in summaries if n.startswith("download_") and not n.endswith("_two_cores")),
        key=_size_key,
    )
    if len(downloads) > 1:
        lines += [
            "",
            "| download size | SDK MiB/s (MD5 checked) | SDK MiB/s (no MD5) | "
            "aiohttp MiB/s | SDK client CPU (s) | SDK memory growth (MiB) |",
            "|---|---|---|---|---|---|",
        ]
        for name in downloads:
            summary = summaries[name]
            cells = [
                _fmt(_median(summary, "sdk", "transfer_mib_s")),
                _fmt(_median(summary, "sdk_no_md5", "transfer_mib_s")),
                _fmt(_median(summary, "aiohttp", "transfer_mib_s")),
                _fmt(_median(summary, "sdk", "cpu_s")),
                _fmt(_median(summary, "sdk", "rss_growth_mib")),
            ]
            size = name.removeprefix("download_").upper().replace("M", " MiB").replace("G", " GiB")
            lines.append(f"| {size} | " + " | ".join(cells) + " |")
    lines += _stall_lines(summaries)
    lines += _scaleout_lines(summaries)
    return "\n".join(lines) + "\n"


_IDLE_METRICS = ("rss_kib_per_wait", "start_cpu_us_per_wait", "cancel_cpu_us_per_wait")


def _idle_lines(summaries: dict[str, dict[str, Any]]) -> list[str]:
    """Idle waits: memory and CPU of each, the SDK against bare asyncio."""
    names = sorted((n for n in summaries if n.startswith("wait_idle_")), key=_size_key)
    lines: list[str] = []
    for name in names:
        summary = summaries[name]
        if not lines:
            lines += [
                "",
                "| idle waits | contender | memory per wait (KiB) | CPU to start one (us) | "
                "CPU to cancel one (us) |",
                "|---|---|---|---|---|",
            ]
        for contender in summary["contenders"]:
            cells = [_fmt(_median(summary, contender, metric)) for metric in _IDLE_METRICS]
            label = f"{int(name.removeprefix('wait_idle_')):,}"
            lines.append(f"| {label} | {contender} | " + " | ".join(cells) + " |")
    return lines


#: The longest stall of the event loop each case may cause (milliseconds).
STALL_TARGET_MS = 50.0


def _stall_lines(summaries: dict[str, dict[str, Any]]) -> list[str]:
    """Loop stalls: the SDK's longest (and p99), before the change, and by hand."""
    names = sorted(n for n in summaries if n.startswith("stall_"))
    if not names:
        return []
    lines = [
        "",
        "| loop stall | SDK max (p99) ms | SDK before max ms | hand-written max (p99) ms | "
        "longest collection, SDK ms | floor: one str of the body, max ms | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        summary = summaries[name]
        ours = _median(summary, "sdk", "cpu_lag_max_ms")
        verdict = (
            "-"
            if ours is None
            else f"<= {STALL_TARGET_MS:.0f} ms "
            + ("(met)" if ours <= STALL_TARGET_MS else "(**missed**)")
        )
        cells = [
            f"{_fmt(ours)} ({_fmt(_median(summary, 'sdk', 'cpu_lag_p99_ms'))})",
            _fmt(_median(summary, "sdk" + BEFORE_SUFFIX, "cpu_lag_max_ms")),
            f"{_fmt(_median(summary, 'handwritten', 'cpu_lag_max_ms'))} "
            f"({_fmt(_median(summary, 'handwritten', 'cpu_lag_p99_ms'))})",
            _fmt(_median(summary, "sdk", "gc_max_ms")),
            _fmt(_median(summary, FLOOR, "cpu_lag_max_ms")),
            verdict,
        ]
        lines.append(f"| {name.removeprefix('stall_')} | " + " | ".join(cells) + " |")
    return lines


#: The scaleout contenders: (workers, Redis).
_SCALEOUT = {
    "1_worker": ("1", "no"),
    "4_workers": ("4", "no"),
    "4_workers_redis": ("4", "yes"),
    "4_workers_redis_down": ("4", "stopped"),
}


def _scaleout_lines(summaries: dict[str, dict[str, Any]]) -> list[str]:
    names = sorted(
        n
        for n in summaries
        if n.startswith("scaleout_") and not n.startswith(_SCALEOUT_LIMITS_PREFIX)
    )
    lines: list[str] = []
    if names:
        lines += [
            "",
            "| waits | workers | Redis | authorizes | renewals per token lifetime | "
            "finish-to-return, delivery on another worker: median (s) | p99 (s) | "
            "calls failed |",
            "|---|---|---|---|---|---|---|---|",
        ]
    for name in names:
        summary = summaries[name]
        for contender, (workers, redis) in _SCALEOUT.items():
            if contender not in summary["contenders"]:
                continue
            cells = [
                _fmt(_median(summary, contender, m))
                for m in (
                    "authorizes",
                    "renewals_per_token_lifetime",
                    "finish_to_return_median_s",
                    "finish_to_return_p99_s",
                    "calls_failed",
                )
            ]
            waits = name.removeprefix("scaleout_")
            lines.append(f"| {waits} | {workers} | {redis} | " + " | ".join(cells) + " |")
    return lines + _scaleout_limit_lines(summaries)


_SCALEOUT_LIMITS_PREFIX = "scaleout_ratelimit_"

#: The scale-out rate-limit contenders: (processes, Redis, RateLimit).
_SCALEOUT_LIMITS = {
    "1_process_rate_limit": ("1", "no", "95 % of R"),
    "1_process": ("1", "no", "none"),
    "4_processes": ("4", "no", "none"),
    "4_processes_redis_rate_limit": ("4", "yes", "95 % of R, shared"),
    "4_processes_redis": ("4", "yes", "none (shared 429 pause)"),
}


def _scaleout_limit_lines(summaries: dict[str, dict[str, Any]]) -> list[str]:
    names = sorted(n for n in summaries if n.startswith(_SCALEOUT_LIMITS_PREFIX))
    if not names:
        return []
    lines = [
        "",
        "| limit | processes | Redis | RateLimit | budget used | second half | "
        "answered 429 (per launch) | failed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        summary = summaries[name]
        limit = name.removeprefix(_SCALEOUT_LIMITS_PREFIX).replace("r", "R = ") + "/s"
        for contender, (processes, redis, rate_limit) in _SCALEOUT_LIMITS.items():
            if contender not in summary["contenders"]:
                continue
            used = _median(summary, contender, "budget_used") or 0.0
            steady = _median(summary, contender, "steady_budget_used") or 0.0
            share = _median(summary, contender, "share_429") or 0.0
            answered = f"{_median(summary, contender, 'answered_429') or 0.0:.0f}"
            cells = [
                f"{used * 100:.1f} %",
                f"{steady * 100:.1f} %",
                f"{answered} ({share * 100:.1f} %)",
                _fmt(_median(summary, contender, "failed")),
            ]
            lines.append(
                f"| {limit} | {processes} | {redis} | {rate_limit} | " + " | ".join(cells) + " |"
            )
    return lines


def write_results_readme(command: str) -> Path:
    """benchmarks/results/README.md: the machine, the command, the headline, every table."""
    summaries = _summaries()
    info = machine()
    parts = [
        "# Benchmark results",
        "",
        f"Command: `{command}`  ",
        f"Machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, "
        f"{info['platform']}  ",
        f"Pinning: {info['pinning']}  ",
        "Each table: median (min-max) over its rounds; every contender runs in a fresh "
        "process against the fake server in another process, alternating round by round. "
        "The scaling tables (`download_64m`, `download_256m`, `json_items_1g`, "
        "`wait_*_scaling`) come from `python -m benchmarks --scaling`; each table's date is "
        "above it.",
        "",
        "## Headline",
        "",
        headline(summaries),
        "## Every table",
        "",
    ]
    for name in _ordered(list(summaries)):
        table = RESULTS / f"{name}.md"
        if table.exists():
            parts += [f"_{summaries[name].get('when', '')}_", "", table.read_text()]
    path = RESULTS / "README.md"
    path.write_text("\n".join(parts))
    return path


def update_readme(command: str, readme: Path = ROOT / "README.md") -> bool:
    """Refresh the headline tables between the markers of the README's Benchmarks section."""
    text = readme.read_text()
    if START not in text or END not in text:
        return False
    info = machine()
    block = "\n".join(
        [
            START,
            f"Measured with `{command}` (the 20 s-window waits and the download sizes: "
            f"`python -m benchmarks --scaling`) on {info['cpu']} ({info['cores']} cores, "
            f"Python {info['python']}; {info['pinning']}):",
            "",
            headline(),
            "All tables: [benchmarks/results/README.md](benchmarks/results/README.md).",
            END,
        ]
    )
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    readme.write_text(before + block + after)
    return True
