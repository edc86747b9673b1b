"""``stilts votlint``, the validator TOPCAT's authors ship, run on the VOTables the tests
write: every export must open in TOPCAT and Aladin without a warning."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def assert_valid_votable(path: Path) -> None:
    """Fail with votlint's own words if it reports anything about ``path``; skip where
    ``stilts`` is not installed (``make system-packages`` installs it; CI does)."""
    stilts = shutil.which("stilts")
    if stilts is None:
        pytest.skip("stilts is not installed (make system-packages): VOTables not validated")
    done = subprocess.run([stilts, "votlint", str(path)], capture_output=True, text=True,
                          timeout=120)
    said = (done.stdout + done.stderr).strip()
    assert done.returncode == 0 and not said, f"stilts votlint {path}:\n{said}"
