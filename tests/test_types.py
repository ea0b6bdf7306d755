"""The package type-checks: ``python -m mypy mailbot`` with the settings in pyproject.toml
([tool.mypy]: the bodies of unannotated functions checked too, every ``# type: ignore`` naming
its error code and reported once it is no longer needed). mypy and the stub packages come with
the ``test`` extra. Slow (about 10 s from a cold cache): the fast tier leaves it out."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_passes_on_the_package() -> None:
    run = subprocess.run([sys.executable, "-m", "mypy", "mailbot"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, f"mypy mailbot failed (exit {run.returncode}):\n{run.stdout}{run.stderr}"
    assert "Success: no issues found" in run.stdout, run.stdout
