"""Versions of installed packages, as their metadata says (``--version``, ``gumbeld_build_info``).

>>> package_version() == metadata.version("gumbeld")
True
>>> package_version("no-such-package")
'unknown'
"""
from __future__ import annotations

from importlib import metadata


def package_version(name: str = "gumbeld") -> str:
    """The version ``name`` is installed at, or ``"unknown"`` when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"
