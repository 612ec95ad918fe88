"""External programs the tests run for real (never mocked, never skipped)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def required_tool(name: str, debian_package: str) -> str:
    """Path of ``name``; fails the test (it does not skip) with how to install it when missing."""
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/bin") / name, Path("/usr/local/bin") / name) if p.exists()), None)
    if found is None:
        pytest.fail(f"{name} is not installed; run `scripts/test` to install the test dependencies "
                    f"(Debian's `{debian_package}` package)", pytrace=False)
    return found
