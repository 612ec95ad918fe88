"""Fixtures shared by the whole test suite."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of Prometheus' ``promtool``, which checks the exposition format; required, never skipped."""
    found = shutil.which("promtool") or next(
        (str(p) for p in (Path("/usr/bin/promtool"), Path("/usr/local/bin/promtool")) if p.exists()), None)
    if found is None:
        pytest.fail("promtool is not installed; run `scripts/test` to install the "
                    "test dependencies (it comes with Debian's `prometheus` package)", pytrace=False)
    return found
