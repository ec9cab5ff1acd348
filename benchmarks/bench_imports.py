"""Start-up cost: a fresh `python -c "import ..."` for the SDK against aiohttp (and nothing).

Whole-process wall time, the interpreter's own start included, since that is what a
command line or a short-lived job pays; and what `python -X importtime` counts for the
import statements alone. Each contender runs its statement several times per round, in
fresh processes, alternating with the others; byte code is written and used, as an
installed package has it (a first, unmeasured run writes it). Run alone:

    python -m benchmarks.bench_imports [--before DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from ._harness import BEFORE_ENV, ROOT, compare

STATEMENTS = {
    "python": "pass",
    "aiohttp": "import aiohttp",
    "sdk": "import transactionlink_async",
    # What a script or the command line needs before its first call.
    "sdk_client": (
        "from transactionlink_async import OrganizationToken, TransactionLink; "
        "TransactionLink(OrganizationToken('tot_x'))"
    ),
}


def _import_ms(stderr: str) -> float:
    """Total of the top-level imports in `-X importtime` output, in ms."""
    total = 0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        _, cumulative, name = line.split("|")
        if not name[1:].startswith(" "):  # not nested inside another import
            total += int(cumulative)
    return total / 1000


async def start(statement: str, runs: int) -> dict[str, Any]:
    # The SDK under test: this checkout, or the --before one (see _harness).
    root = os.environ.get("BENCH_SDK_ROOT") or str(ROOT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    command = [sys.executable, "-X", "importtime", "-c", STATEMENTS[statement]]
    # Blocking on purpose: nothing else runs in this process, and timing is the point.
    subprocess.run(command, cwd=root, env=env, capture_output=True, check=True)  # noqa: ASYNC221
    walls, imports = [], []
    for _ in range(runs):
        began = time.perf_counter()
        done = subprocess.run(  # noqa: ASYNC221
            command, cwd=root, env=env, capture_output=True, text=True, check=True
        )
        walls.append(time.perf_counter() - began)
        imports.append(_import_ms(done.stderr))
    # On a shared machine other processes only ever add time: the fastest run is the
    # closest to the statement's own cost, the median says what one usually waits.
    return {
        "start_min_s": min(walls),
        "start_s": statistics.median(walls),
        "import_min_ms": min(imports),
        "import_ms": statistics.median(imports),
    }


def main(quick: bool = False) -> None:
    runs = 3 if quick else 7
    compare(
        "imports",
        {
            label: ("benchmarks.bench_imports:start", {"statement": label, "runs": runs})
            for label in ("sdk", "sdk_client", "aiohttp", "python")
        },
        rounds=2 if quick else 5,
        metric="start_min_s",
        unit="s",
        higher_is_better=False,
        extra_metrics=("start_s", "import_min_ms", "import_ms"),
        before=["sdk", "sdk_client"],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_imports")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--before", metavar="DIR", help="also run the SDK from this checkout")
    arguments = parser.parse_args()
    if arguments.before:
        os.environ[BEFORE_ENV] = os.path.abspath(arguments.before)
    main(quick=arguments.quick)
