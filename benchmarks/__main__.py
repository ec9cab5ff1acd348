"""`python -m benchmarks [--quick | --scaling] [--readme] [--before DIR] [names...]`: run the
benchmarks, write benchmarks/results/ (one table per run and a combined README.md)."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import time
from pathlib import Path

from ._harness import BEFORE_ENV
from ._report import update_readme, write_results_readme


def main() -> None:
    available = sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"some of {', '.join(available)}; default: all")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="the scaling runs instead (downloads of 64 MiB, 256 MiB and 1 GiB; "
        "500, 2,000 and 5,000 waits): several more minutes",
    )
    parser.add_argument(
        "--readme", action="store_true", help="also refresh the README's Benchmarks tables"
    )
    parser.add_argument(
        "--before",
        metavar="DIR",
        help="a checkout of the code before a change (e.g. `git worktree add DIR TAG`): "
        "the SDK's contenders also run from it, side by side, as <name>@before",
    )
    args = parser.parse_args()
    if args.before:
        if not os.path.isdir(os.path.join(args.before, "transactionlink_async")):
            parser.error(f"--before {args.before}: no transactionlink_async package there")
        os.environ[BEFORE_ENV] = os.path.abspath(args.before)
    began = time.monotonic()
    for name in args.names or available:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        if args.scaling and not hasattr(module, "scaling"):
            continue
        started = time.monotonic()
        print(f"== {name}", flush=True)
        if args.scaling:
            module.scaling()
        else:
            module.main(quick=args.quick)
        print(f"== {name}: {time.monotonic() - started:.0f}s", flush=True)
    command = "python -m benchmarks " + " ".join(sys.argv[1:])
    print(f"== all: {time.monotonic() - began:.0f}s; {write_results_readme(command.strip())}")
    if args.readme and not args.quick:
        print("README.md updated" if update_readme(command.strip()) else "README.md: no markers")


if __name__ == "__main__":
    main()
