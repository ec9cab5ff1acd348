"""`python -m benchmarks [--quick] [names...]`: run the benchmarks and write benchmarks/results/."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import time
from pathlib import Path


def main() -> None:
    available = sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"some of {', '.join(available)}; default: all")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    args = parser.parse_args()
    for name in args.names or available:
        started = time.monotonic()
        print(f"== {name}", flush=True)
        importlib.import_module(f"benchmarks.bench_{name}").main(quick=args.quick)
        print(f"== {name}: {time.monotonic() - started:.0f}s", flush=True)


if __name__ == "__main__":
    main()
