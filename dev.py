#!/usr/bin/env python3
"""One entry point for newcomers and CI: makes .venv with what the task needs, then runs it.

    python3 dev.py demo        the whole flow against the embedded fake server
    python3 dev.py test        the test suite
    python3 dev.py lint        ruff check and ruff format --check
    python3 dev.py typecheck   mypy --strict
    python3 dev.py types       pyright --verifytypes (100 %) and pyright on tests/typing
    python3 dev.py docs        serve the documentation site on http://127.0.0.1:8000
    python3 dev.py docs-build  build the site with mkdocs build --strict (into site/)
    python3 dev.py bench       the benchmarks (minutes; writes benchmarks/results/)

Only the standard library is used here, so it runs on a machine that has nothing but Python.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")

TASKS: dict[str, list[str]] = {
    "demo": ["-m", "transactionlink_async", "demo"],
    "test": ["-m", "pytest"],
    "lint": [],  # two commands: see main()
    "typecheck": ["-m", "mypy"],
    "types": [],  # two commands: see main()
    "docs": ["-m", "mkdocs", "serve"],
    "docs-build": ["-m", "mkdocs", "build", "--strict"],
    "bench": ["-m", "benchmarks"],
}


def ensure_venv() -> None:
    """Create .venv and install the project with its dev extras when pyproject.toml changed."""
    if sys.version_info < (3, 10):  # noqa: UP036 - dev.py may be run by an older python3
        sys.exit("transactionlink-async needs Python 3.10 or newer")
    stamp = VENV / ".installed"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if PYTHON.exists() and stamp.exists() and stamp.read_text() == wanted:
        return
    if not PYTHON.exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing the project and its dev tools into .venv ...", flush=True)
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "-e", f"{ROOT}[dev]"], check=True)
    stamp.write_text(wanted)


def run(args: list[str]) -> int:
    return subprocess.run([str(PYTHON), *args], cwd=ROOT, check=False).returncode


def types() -> int:
    """Every public name fully typed, and the public surface as user code sees it."""
    pyright = [str(PYTHON), "-m", "pyright", "--pythonpath", str(PYTHON)]
    # pyright cannot follow an editable install: it is shown these sources directly.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    verify = [*pyright, "--verifytypes", "transactionlink_async", "--ignoreexternal"]
    complete = subprocess.run(verify, cwd=ROOT, env=env, check=False).returncode
    surface = subprocess.run([*pyright, "tests/typing"], cwd=ROOT, env=env, check=False)
    return complete or surface.returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in TASKS:
        print(__doc__)
        return 2
    task, extra = argv[0], argv[1:]
    ensure_venv()
    if task == "lint":
        check = run(["-m", "ruff", "check", ".", *extra])
        fmt = run(["-m", "ruff", "format", "--check", "."])
        return check or fmt
    if task == "types":
        return types()
    return run([*TASKS[task], *extra])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
