"""Benchmark plumbing: the fake server in its own process, contenders in fresh processes, tables."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent


def _pinning() -> tuple[int, int] | None:
    """(server CPU, client CPU) when processes are pinned apart, None when they float.

    On by default with two or more CPUs: the fake server and the contender then never
    compete for one core, and a contender's figure depends less on where the scheduler
    happened to put it. BENCH_PIN=0 turns it off.
    """
    if os.environ.get("BENCH_PIN", "1") == "0" or not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else None


PINNING = _pinning()

#: A checkout of the code before a change (`git worktree add ../before TAG`), whose
#: contenders run beside this one's in the same session: `python -m benchmarks --before DIR`.
BEFORE_ENV = "BENCH_BEFORE"
# Tells a contender's process which checkout's `transactionlink_async` to import.
_SDK_ROOT_ENV = "BENCH_SDK_ROOT"
#: Set to "all" for contenders that may use every CPU (the server keeps its own): what a
#: client with a core to spare, the server on another machine, can do.
CHILD_CPUS_ENV = "BENCH_CHILD_CPUS"
BEFORE_SUFFIX = "@before"
#: The contender that measures a limit no SDK can go below (e.g. bench_stalls.decode_floor).
FLOOR = "floor"

__all__ = [
    "BEFORE_ENV",
    "BEFORE_SUFFIX",
    "CHILD_CPUS_ENV",
    "FLOOR",
    "RESULTS",
    "ServerInfo",
    "before_root",
    "compare",
    "every_cpu",
    "fake_server",
    "isolated",
    "machine",
    "read_report",
    "record",
    "run_isolated",
]


@contextlib.contextmanager
def every_cpu() -> Iterator[None]:
    """Contenders started inside may use every CPU (the server keeps its own pinning)."""
    os.environ[CHILD_CPUS_ENV] = "all"
    try:
        yield
    finally:
        del os.environ[CHILD_CPUS_ENV]


def before_root() -> str | None:
    """The "before" checkout given with --before, if any."""
    root = os.environ.get(BEFORE_ENV)
    return str(Path(root).resolve()) if root else None


@attrs.frozen
class ServerInfo:
    """How to reach a fake server running in another process."""

    base_url: str
    org_token: str
    api_key: str
    api_secret: str
    raw: dict[str, Any]


@contextlib.contextmanager
def fake_server(*serve_args: str) -> Iterator[ServerInfo]:
    """Run `python -m transactionlink_async.testing serve` in its own process."""
    command = [sys.executable, "-m", "transactionlink_async.testing", "serve", *serve_args]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if PINNING is not None:
        os.sched_setaffinity(process.pid, {PINNING[0]})
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the fake server did not start: {' '.join(command)}")
        raw = json.loads(line)
        yield ServerInfo(
            base_url=raw["base_url"],
            org_token=raw["org_token"],
            api_key=raw["api_key"],
            api_secret=raw["api_secret"],
            raw=raw,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def isolated(
    target: str, *, sdk_root: str | None = None, wrapper: Sequence[str] = (), **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run `async def fn(**kwargs) -> dict` (named "module:fn") in a fresh process, under
    `wrapper` (e.g. valgrind) if given; the finished process, its output captured.

    With `sdk_root`, the contender imports `transactionlink_async` from that checkout
    instead of this one (the benchmark code itself is always this one's).
    """
    command = [*wrapper, sys.executable, "-m", "benchmarks._harness", target, json.dumps(kwargs)]
    env = dict(os.environ)
    env.pop(_SDK_ROOT_ENV, None)
    if sdk_root is not None:
        env[_SDK_ROOT_ENV] = sdk_root
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{target} failed:\n{done.stderr[-4000:]}")
    return done


def run_isolated(target: str, *, sdk_root: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """What `isolated` printed: the contender's result, with its time and memory."""
    done = isolated(target, sdk_root=sdk_root, **kwargs)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _child(target: str, kwargs_json: str) -> None:
    if PINNING is not None and os.environ.get(CHILD_CPUS_ENV) != "all":
        os.sched_setaffinity(0, {PINNING[1]})
    root = os.environ.get(_SDK_ROOT_ENV)
    if root:
        # Before anything imports the SDK: this process measures that checkout's code.
        sys.path.insert(0, root)
    module_name, function_name = target.split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    kwargs = json.loads(kwargs_json)
    rss_start = _rss_mib()
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    result = dict(anyio.run(lambda: function(**kwargs)))
    result["wall_s"] = time.perf_counter() - wall_start
    result["cpu_s"] = time.process_time() - cpu_start
    # ru_maxrss is the whole life's peak in KiB on Linux: fresh processes make it this run's.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["rss_start_mib"] = rss_start
    result["peak_rss_mib"] = peak
    result["rss_growth_mib"] = peak - rss_start
    sdk = sys.modules.get("transactionlink_async")
    if sdk is not None and sdk.__file__ is not None:
        result["sdk_root"] = str(Path(sdk.__file__).resolve().parent.parent)
    print(json.dumps(result))


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "pinning": (
            f"server on CPU {PINNING[0]}, contenders on CPU {PINNING[1]}"
            if PINNING is not None
            else "none"
        ),
    }


def _stats(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def compare(
    name: str,
    contenders: dict[str, tuple[str, dict[str, Any]]],
    *,
    rounds: int,
    metric: str,
    unit: str,
    higher_is_better: bool = True,
    baseline: str = "sdk",
    extra_metrics: Sequence[str] = (),
    before: Sequence[str] = (),
) -> dict[str, Any]:
    """Run contenders alternately for `rounds`; write results/<name>.json and .md; print.

    Each label in `before` also runs from the --before checkout (when one is given), as
    `<label>@before`, in the same rounds: before and after measured side by side.
    """
    roots: dict[str, str | None] = {label: None for label in contenders}
    planned = dict(contenders)
    old = before_root()
    if old is not None:
        for label in before:
            twin = label + BEFORE_SUFFIX
            planned[twin] = contenders[label]
            roots[twin] = old
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in planned}
    for number in range(rounds):
        for label, (target, kwargs) in planned.items():
            outcome = run_isolated(target, sdk_root=roots[label], **kwargs)
            runs[label].append(outcome)
            print(f"  {name} round {number + 1}/{rounds} {label}: {outcome[metric]:.4g} {unit}")
    return record(
        name,
        runs,
        metric=metric,
        unit=unit,
        higher_is_better=higher_is_better,
        baseline=baseline,
        metrics=[metric, *extra_metrics, "cpu_s", "rss_growth_mib"],
    )


def record(
    name: str,
    runs: dict[str, list[dict[str, Any]]],
    *,
    metric: str,
    unit: str,
    higher_is_better: bool,
    baseline: str,
    metrics: Sequence[str],
) -> dict[str, Any]:
    """Summarise each contender's runs (labels ending in @before: the --before checkout's);
    write results/<name>.json and .md; print the table."""
    rounds = max(len(results) for results in runs.values())
    summary: dict[str, Any] = {
        "name": name,
        "metric": metric,
        "unit": unit,
        "higher_is_better": higher_is_better,
        "rounds": rounds,
        "machine": machine(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "contenders": {
            label: {
                m: _stats([r[m] for r in results if m in r])
                for m in metrics
                if results[0].get(m) is not None
            }
            for label, results in runs.items()
        },
        "runs": runs,
    }
    base = summary["contenders"][baseline][metric]["median"]
    summary["ratios"] = {
        f"{baseline}/{label}": (
            base / stats[metric]["median"] if higher_is_better else stats[metric]["median"] / base
        )
        for label, stats in summary["contenders"].items()
        if label != baseline and stats[metric]["median"]
    }
    # The same comparisons for the code before the change, against the same peers.
    for twin in (label for label in runs if label.endswith(BEFORE_SUFFIX)):
        mine = summary["contenders"][twin][metric]["median"]
        for label, stats in summary["contenders"].items():
            peer = stats[metric]["median"]
            if label.endswith(BEFORE_SUFFIX) or label.startswith("sdk") or not peer or not mine:
                continue
            summary["ratios"][f"{twin}/{label}"] = mine / peer if higher_is_better else peer / mine
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    table = markdown_table(summary, metrics)
    (RESULTS / f"{name}.md").write_text(table)
    print(table)
    return summary


def _figure(value: float) -> str:
    """Four significant digits; whole numbers, with separators, from 100,000 on."""
    return f"{value:,.0f}" if abs(value) >= 100_000 else f"{value:.4g}"


def markdown_table(summary: dict[str, Any], metrics: Sequence[str]) -> str:
    """One row per contender: median (min-max) of each metric, then the ratios."""
    header = "| contender | " + " | ".join(
        f"{m} ({summary['unit']})" if m == summary["metric"] else m for m in metrics
    )
    lines = [
        f"### {summary['name']}",
        "",
        header + " |",
        "|---" * (len(metrics) + 1) + "|",
    ]
    for label, stats in summary["contenders"].items():
        cells = [
            f"{_figure(stats[m]['median'])} ({_figure(stats[m]['min'])}-{_figure(stats[m]['max'])})"
            if m in stats
            else "-"
            for m in metrics
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    better = "higher" if summary["higher_is_better"] else "lower"
    for ratio_name, value in summary["ratios"].items():
        lines.append(f"- {ratio_name}: **{value:.2f}x** ({summary['metric']}, {better} is better)")
    machine_info = summary["machine"]
    pinned = machine_info.get("pinning", "none")
    lines.append(
        f"- {summary['rounds']} rounds, medians (min-max); {machine_info['cpu']}, "
        f"{machine_info['cores']} cores, Python {machine_info['python']}"
        + (f"; {pinned}" if pinned != "none" else "; processes not pinned")
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])


async def read_report(process: asyncio.subprocess.Process, what: str) -> dict[str, Any]:
    """The next line a child process of a benchmark prints, as the JSON object it is."""
    assert process.stdout is not None
    line = await process.stdout.readline()
    if not line:
        raise RuntimeError(f"a {what} ended early (see its stderr above)")
    said: dict[str, Any] = json.loads(line)
    return said
