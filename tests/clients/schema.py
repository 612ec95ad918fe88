"""The published JSON Schema of a snapshot (``docs/snapshot.schema.json``) as a validator, formats checked.

The validator is the class the schema's ``$schema`` names (the newest draft when it names none).
jsonschema checks ``date-time`` only when the optional ``rfc3339-validator`` package is installed
and passes it silently otherwise, so an RFC 3339 check is added here when it is missing; every
format the schema uses must have a check.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from jsonschema import FormatChecker
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "snapshot.schema.json"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")


def snapshot_validator() -> Validator:
    schema = json.loads(SCHEMA.read_text())
    cls = validator_for(schema)
    cls.check_schema(schema)
    checker = FormatChecker()
    if "date-time" not in checker.checkers:
        checker.checks("date-time", raises=ValueError)(_rfc3339)
    unchecked = _formats(schema) - set(checker.checkers)
    assert not unchecked, f"formats of {SCHEMA.name} that would pass unchecked: {sorted(unchecked)}"
    return cls(schema, format_checker=checker)


def _rfc3339(instance) -> bool:
    if not isinstance(instance, str):
        return True  # formats constrain strings only
    if not RFC3339.fullmatch(instance):
        return False
    datetime.fromisoformat(instance.upper().replace("Z", "+00:00"))  # a real date and time (raises if not)
    return True


def _formats(node) -> set[str]:
    if isinstance(node, dict):
        found = {node["format"]} if isinstance(node.get("format"), str) else set()
        return found.union(*(_formats(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_formats(value) for value in node))
    return set()
