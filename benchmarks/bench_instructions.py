"""CPU per call counted in machine instructions (valgrind): free of the noise that timings carry.

Timed runs on a shared machine swing by 10 % and more from one run to the next, which
hides a change of a few per cent. The instructions a call costs do not swing: each
contender runs `calls` GETs under callgrind, then three times as many, and the
difference over the difference in calls is what one call costs, start-up left out.
"""

from __future__ import annotations

import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio

from ._harness import BEFORE_SUFFIX, before_root, every_cpu, fake_server, isolated, record
from .bench_calls import prepare

_COLLECTED = re.compile(r"Collected : (\d+)")
_CALLGRIND = ("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null")


def _instructions(target: str, sdk_root: str | None, kwargs: dict[str, Any]) -> int:
    done = isolated(target, sdk_root=sdk_root, wrapper=_CALLGRIND, **kwargs)
    found = _COLLECTED.findall(done.stderr)
    if not found:
        raise RuntimeError(f"{target}: callgrind gave no count:\n{done.stderr[-2000:]}")
    return int(found[-1])


def _per_call(target: str, sdk_root: str | None, kwargs: dict[str, Any], calls: int) -> float:
    """Instructions of `calls` more calls, over `calls`: the cost of one, start-up left out."""
    sizes = (calls, 3 * calls)
    with ThreadPoolExecutor(max_workers=2) as pool:
        few, many = pool.map(
            lambda total: _instructions(target, sdk_root, {**kwargs, "total": total}), sizes
        )
    return (many - few) / (sizes[1] - sizes[0])


def main(quick: bool = False) -> None:
    if shutil.which("valgrind") is None:
        print("  skipped: valgrind is not installed (apt-get install valgrind)")
        return
    # One at a time, each call waits for its answer: under valgrind that is ten times
    # slower than at 100 concurrent calls, so fewer calls are counted.
    calls = {1: 60 if quick else 200, 100: 300 if quick else 1_000}
    # Counts at 100 concurrent calls move by about 1 % with how the loop batches its
    # events; two rounds show it.
    rounds = 1 if quick else 2
    # Two contenders' processes at once, one per core: counts do not depend on the core.
    with every_cpu(), fake_server("--journal-limit", "1000") as server:
        execution_id = anyio.run(prepare, server.base_url, server.org_token)
        contenders: dict[str, tuple[str, str | None]] = {
            "sdk": ("benchmarks.bench_calls:sdk", None),
            "aiohttp": ("benchmarks.bench_calls:raw_aiohttp", None),
        }
        old = before_root()
        if old is not None:
            contenders["sdk" + BEFORE_SUFFIX] = ("benchmarks.bench_calls:sdk", old)
        for concurrency in (1, 100):
            name = f"instructions_c{concurrency}"
            kwargs = {
                "base_url": server.base_url,
                "token": server.org_token,
                "execution_id": execution_id,
                "concurrency": concurrency,
            }
            runs: dict[str, list[dict[str, Any]]] = {label: [] for label in contenders}
            for number in range(rounds):
                for label, (target, root) in contenders.items():
                    per_call = _per_call(target, root, kwargs, calls[concurrency])
                    print(f"  {name} round {number + 1}/{rounds} {label}: {per_call:,.0f}")
                    runs[label].append({"instructions_per_call": per_call})
            record(
                name,
                runs,
                metric="instructions_per_call",
                unit="instructions",
                higher_is_better=False,
                baseline="sdk",
                metrics=["instructions_per_call"],
            )
