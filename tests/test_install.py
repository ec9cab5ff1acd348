"""A plain `pip install` of the project (no extras) in a fresh venv runs the demo, as documented.

Slow (a venv and an install from the package index): deselected by default, run by CI
with `-m slow`.
"""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# The distribution's metadata, read inside the fresh venv.
METADATA = """
import json
from importlib import metadata
dist = metadata.metadata("transactionlink-async")
print(json.dumps({
    "license": dist.get("License-Expression"),
    "license_files": dist.get_all("License-File"),
    "urls": dist.get_all("Project-URL"),
    "classifiers": dist.get_all("Classifier"),
    "extras": dist.get_all("Provides-Extra"),
    "requires": metadata.requires("transactionlink-async"),
}))
"""


def run(argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    # Nothing of the checkout or the suite's environment leaks in: the venv's own site.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run(  # noqa: S603 - our own venv's programs and arguments
        argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def plain_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with `pip install <the project>`, nothing else; its bin folder."""
    home = tmp_path_factory.mktemp("plain-install")
    venv.EnvBuilder(with_pip=True).create(home / "venv")
    bin_dir = home / "venv" / ("Scripts" if os.name == "nt" else "bin")
    pip = [str(bin_dir / "python"), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    done = run([*pip, "install", str(ROOT)], cwd=home, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return bin_dir


def test_the_demo_runs_on_a_plain_install(plain_install: Path) -> None:
    workdir = plain_install.parent.parent  # not the checkout: the installed package runs
    done = run(
        [str(plain_install / "transactionlink"), "demo", "--result-mb", "2", "--workflows", "3"],
        cwd=workdir,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    assert "ended by its webhook" in done.stdout
    assert "sanctions-screening  v3   FAILED" in done.stdout
    assert "done in" in done.stdout


def test_only_the_core_dependencies_were_installed(plain_install: Path) -> None:
    done = run(
        [str(plain_install / "python"), "-c", "import ijson, starlette, redis"],
        cwd=plain_install,
        timeout=60,
    )
    assert done.returncode != 0, "an optional extra came with the plain install"
    assert "ModuleNotFoundError" in done.stderr


def test_the_package_metadata(plain_install: Path) -> None:
    done = run([str(plain_install / "python"), "-c", METADATA], cwd=plain_install, timeout=60)
    assert done.returncode == 0, done.stderr
    meta = json.loads(done.stdout)
    assert meta["license"] == "MIT"
    assert meta["license_files"] == ["LICENSE"]
    assert any(url.startswith("Documentation, https://") for url in meta["urls"])
    classifiers = set(meta["classifiers"])
    for minor in range(10, 14):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert {"Typing :: Typed", "Framework :: AsyncIO", "Development Status :: 4 - Beta"} <= (
        classifiers
    )
    # Old install lines naming the former webhooks extra still work.
    assert "webhooks" in meta["extras"]
    core = [r for r in meta["requires"] if "extra ==" not in r]
    assert any(r.startswith("cryptography>=") for r in core)
    assert any(r.startswith("yarl>=") for r in core)

    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License")
    assert "transactionlink_async contributors" in license_text
