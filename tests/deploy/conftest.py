"""Fixtures of the deployment tests (deploy/)."""
from __future__ import annotations

import pytest

from tests.tools import required_tool

try:
    import yaml  # noqa: F401  (every test here reads YAML)
except ImportError:  # pragma: no cover
    raise ImportError("PyYAML is missing: run `scripts/setup`, which installs the test extra "
                      "of pyproject.toml") from None


@pytest.fixture(scope="session")
def kubectl() -> str:
    """``kubectl``, whose built-in kustomize renders deploy/kubernetes."""
    return required_tool("kubectl", "kubernetes-client")
