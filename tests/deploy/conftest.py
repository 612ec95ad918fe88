"""Fixtures of the deployment tests (deploy/)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

try:
    import yaml  # noqa: F401  (every test here reads YAML)
except ImportError:  # pragma: no cover
    raise ImportError("PyYAML is missing: run `scripts/setup`, which installs the test extra "
                      "of pyproject.toml") from None


@pytest.fixture(scope="session")
def kubectl() -> str:
    """Path of ``kubectl``, whose built-in kustomize renders deploy/kubernetes; required, never skipped."""
    found = shutil.which("kubectl") or next(
        (str(p) for p in (Path("/usr/bin/kubectl"), Path("/usr/local/bin/kubectl")) if p.exists()), None)
    if found is None:
        pytest.fail("kubectl is not installed; run `scripts/test` to install the test dependencies "
                    "(Debian's `kubernetes-client` package)", pytrace=False)
    return found
