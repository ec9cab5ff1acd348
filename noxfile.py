"""nox sessions: tests, lint, typecheck, types, docs, bench (the same commands dev.py runs)."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
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
