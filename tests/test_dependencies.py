"""Every third-party module the package imports is declared, with a lower bound."""

from __future__ import annotations

import ast
import sys
from importlib.metadata import distributions as installed_distributions
from pathlib import Path

from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest brings tomli on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "transactionlink_async"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
TOOL_EXTRAS = {"test", "dev"}


def imported_top_level_modules() -> set[str]:
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {PACKAGE.name}


def declared() -> dict[str, Requirement]:
    project = PYPROJECT["project"]
    lines = list(project["dependencies"])
    for extra, requirements in project["optional-dependencies"].items():
        if extra not in TOOL_EXTRAS:
            lines += requirements
    requirements = [Requirement(line) for line in lines]
    return {r.name.lower(): r for r in requirements if r.name != project["name"]}


def packages_distributions() -> dict[str, list[str]]:
    """Top-level import name -> the distributions that install it, read from their files.

    importlib.metadata's own function reads top_level.txt first on Python 3.10, which
    namespace packages such as opentelemetry's do not ship.
    """
    found: dict[str, list[str]] = {}
    for distribution in installed_distributions():
        name = distribution.metadata["Name"]
        for file in distribution.files or ():
            top = file.parts[0] if len(file.parts) > 1 else file.name.removesuffix(".py")
            if top.isidentifier() and name not in found.setdefault(top, []):
                found[top].append(name)
    return found


def test_every_imported_distribution_is_declared() -> None:
    distributions = packages_distributions()
    wanted = declared()
    for module in sorted(imported_top_level_modules()):
        names = {d.lower() for d in distributions.get(module, [module])}
        assert names & set(wanted), f"{module} is imported but not a declared dependency"


def test_every_dependency_has_a_floor() -> None:
    for name, requirement in declared().items():
        floors = [spec for spec in requirement.specifier if spec.operator == ">="]
        assert floors, f"{name} has no >= lower bound (`nox -s lowest` tests the floors)"
