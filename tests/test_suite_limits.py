"""The suite's own guard rails: a hanging test fails within its time limit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

HANGING = """
import anyio
import pytest

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_hangs() -> None:
    await anyio.sleep(3600)


def test_blocks() -> None:
    import time
    time.sleep(3600)
"""


def test_every_test_has_a_default_time_limit(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.hasplugin("timeout")
    limit = float(pytestconfig.getini("timeout"))
    assert 0 < limit <= 120


def test_a_hanging_test_fails_instead_of_hanging_the_run(tmp_path: Path) -> None:
    (tmp_path / "test_hanging.py").write_text(HANGING)
    began = time.monotonic()
    done = subprocess.run(  # noqa: S603 - this interpreter and our own arguments
        [
            sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"),
            "--rootdir", str(tmp_path), "-p", "no:cacheprovider", "-q",
            "-o", "timeout=1", str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )  # fmt: skip
    assert time.monotonic() - began < 50
    assert done.returncode == 1, done.stdout + done.stderr
    assert "2 failed" in done.stdout, done.stdout
    assert "Timeout" in done.stdout
