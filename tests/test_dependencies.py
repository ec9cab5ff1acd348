"""Every third-party module the package imports is declared, with a lower bound."""

from __future__ import annotations

import ast
import sys
from importlib.metadata import packages_distributions
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
