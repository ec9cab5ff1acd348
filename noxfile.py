"""nox sessions: tests per claimed Python, lowest (the floors), lint, typecheck, types, docs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nox
from packaging.requirements import Requirement
from packaging.version import Version

nox.options.sessions = ["tests", "lint", "typecheck"]

PYPROJECT: dict[str, Any] = nox.project.load_toml("pyproject.toml")
# The Pythons the classifiers claim, oldest first: each gets a `tests-3.X` session.
PYTHONS = sorted(
    (
        match.group(1)
        for classifier in PYPROJECT["project"]["classifiers"]
        if (match := re.fullmatch(r"Programming Language :: Python :: (3\.\d+)", classifier))
    ),
    key=Version,
)
# Extras that hold the suite's and the developers' tools, not the SDK's own needs.
TOOL_EXTRAS = {"test", "dev", "docs"}


def floors(pyproject: dict[str, Any]) -> dict[str, str]:
    """The lowest version each dependency of the SDK (and of its extras) allows."""
    project = pyproject["project"]
    lines = list(project["dependencies"])
    for extra, requirements in project["optional-dependencies"].items():
        if extra not in TOOL_EXTRAS:
            lines += requirements
    lowest: dict[str, str] = {}
    for line in lines:
        requirement = Requirement(line)
        if requirement.name == project["name"]:
            continue
        bounds = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        if not bounds:
            raise ValueError(f"{line!r} has no >= floor: give every dependency a lower bound")
        lowest[requirement.name] = max(bounds, key=Version)
    return lowest


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHONS[0])
def lowest(session: nox.Session) -> None:
    """The suite against the lowest versions pyproject.toml allows, on the oldest Python."""
    wanted = floors(PYPROJECT)
    constraints = Path(session.create_tmp()) / "constraints-lowest.txt"
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in wanted.items()))
    session.install("-c", str(constraints), "-e", ".[test]")
    # The resolver must not have gone around a floor: check what was installed.
    # run_install: the check belongs to the install, so `--install-only` makes it too.
    found = session.run_install(
        "python",
        "-c",
        "import json, sys; from importlib.metadata import version; "
        "print(json.dumps({n: version(n) for n in sys.argv[1:]}))",
        *wanted,
        silent=True,
    )
    installed = json.loads(str(found).strip().splitlines()[-1])
    wrong = {n: v for n, v in installed.items() if Version(v) != Version(wanted[n])}
    if wrong:
        session.error(f"not installed at their floors: {wrong} (wanted {wanted})")
    session.log(
        "installed at their floors: " + ", ".join(f"{n}=={v}" for n, v in installed.items())
    )
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session
def types(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    pyright = ["pyright", "--pythonpath", session.virtualenv.bin + "/python"]
    env = {"PYTHONPATH": str(session.invoked_from)}
    session.run(*pyright, "--verifytypes", "transactionlink_async", "--ignoreexternal", env=env)
    session.run(*pyright, "tests/typing", env=env)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site (`nox -s docs -- serve` serves it instead)."""
    session.install("-e", ".[docs]")
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve")
    else:
        session.run("mkdocs", "build", "--strict")


@nox.session
def bench(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("python", "-m", "benchmarks", *session.posargs)
