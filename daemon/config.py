"""Reading the settings of :mod:`daemon.settings` from their sources.

Each setting has one dotted name, alike in every source. Precedence, highest first:

* command line: ``--metrics.port 9000`` (passed here as ``{"metrics.port": "9000"}``);
* environment: ``GUMBELD_METRICS__PORT=9000`` (prefix ``GUMBELD_``, ``__`` between levels);
* TOML file: ``[metrics]`` table, ``port = 9000``; its path is ``--config PATH`` or ``GUMBELD_CONFIG``;
* the defaults declared in :mod:`daemon.settings`.

List-, tuple- and dict-valued settings take JSON on the command line and in the environment,
e.g. ``GUMBELD_SOURCE__SYNTHETIC__KEYS='{"web": {"probabilities": [0.5, 0.5]}}'``, and a value from
a higher source replaces such a setting as a whole. Sections (``[model]``, ``[model.temperature]``)
merge setting by setting. This module is the only place that reads the environment.
"""
from __future__ import annotations

import difflib
import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings, EnvSettingsSource, SettingsConfigDict, SettingsError, TomlConfigSettingsSource)

from daemon.settings import GumbeldSettings

ENV_PREFIX = "GUMBELD_"
ENV_NESTED_DELIMITER = "__"
CONFIG_FILE_ENV = "GUMBELD_CONFIG"

_JSON_CONTAINERS = (list, tuple, dict, set, frozenset)


class ConfigError(Exception):
    """Invalid configuration; ``problems`` holds one human-readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class LeafSetting:
    """One setting that takes a value, e.g. ``metrics.port``, as the command line offers it."""

    name: str
    field: FieldInfo
    takes_json: bool

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.replace(".", ENV_NESTED_DELIMITER).upper()


def leaf_settings(model: type[BaseModel] = GumbeldSettings, prefix: str = "") -> list[LeafSetting]:
    """Every leaf setting of the tree, depth first in declaration order."""
    leaves: list[LeafSetting] = []
    for name, field in model.model_fields.items():
        section = _section_type(field)
        if section is not None:
            leaves.extend(leaf_settings(section, f"{prefix}{name}."))
        else:
            leaves.append(LeafSetting(f"{prefix}{name}", field, _takes_json(field.annotation)))
    return leaves


def _section_type(field: FieldInfo | None) -> type[BaseModel] | None:
    annotation = field.annotation if field is not None else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _takes_json(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_takes_json(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    candidate = origin or annotation
    return isinstance(candidate, type) and (issubclass(candidate, _JSON_CONTAINERS) or issubclass(candidate, BaseModel))


class _SourceSchema(GumbeldSettings, BaseSettings):
    """Tells the pydantic-settings sources the tree and how the environment spells it; never instantiated."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER, case_sensitive=False, extra="forbid")


class _InjectedEnvSource(EnvSettingsSource):
    """The standard environment source, reading a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self._environ.items()}


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> GumbeldSettings:
    """The effective settings; raises :class:`ConfigError` listing every problem found.

    ``overrides`` maps dotted names to command-line values: strings as typed (JSON for list- and
    dict-valued settings) or already-typed Python values. ``env`` defaults to ``os.environ``;
    ``config_file`` defaults to ``$GUMBELD_CONFIG`` and, when neither is given, no file is read.
    """
    env = os.environ if env is None else env
    settings_env = {k: v for k, v in env.items() if k.upper().startswith(ENV_PREFIX) and k.upper() != CONFIG_FILE_ENV}
    if config_file is None:
        config_file = next((v for k, v in env.items() if k.upper() == CONFIG_FILE_ENV and v), None)
    file_path = Path(config_file) if config_file is not None else None

    problems: list[str] = []
    cli_layer = _cli_layer(overrides or {}, problems)
    env_layer = _env_layer(settings_env, problems)
    file_layer = _file_layer(file_path, problems) if file_path is not None else {}
    if problems:
        raise ConfigError(problems)

    layers = [file_layer, env_layer, cli_layer]  # lowest precedence first
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = _merge(merged, layer, GumbeldSettings)
    try:
        return GumbeldSettings.model_validate(merged)
    except ValidationError as error:
        origins = _Origins(cli_layer, overrides or {}, env_layer, settings_env, file_layer, file_path)
        raise ConfigError([_describe(e, origins) for e in error.errors()]) from None


def _cli_layer(overrides: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    leaves = {leaf.name: leaf for leaf in leaf_settings()}
    layer: dict[str, Any] = {}
    for name, value in overrides.items():
        leaf = leaves.get(name)
        if leaf is not None and leaf.takes_json and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as error:
                problems.append(f"{name}: not valid JSON: {error} (got {value!r}, from --{name})")
                continue
        _put(layer, name.split("."), value)
    return layer


def _env_layer(environ: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    # The source would report a JSON error only by top-level section; check first to name the setting.
    for var, value in environ.items():
        path = var[len(ENV_PREFIX):].lower().split(ENV_NESTED_DELIMITER)
        if _expects_json(path):
            try:
                json.loads(value)
            except ValueError as error:
                problems.append(f"{'.'.join(path)}: not valid JSON: {error} (got {value!r}, from {var})")
    if problems:
        return {}
    try:
        layer = _InjectedEnvSource(_SourceSchema, environ)()
    except SettingsError as error:
        problems.append(f"environment: {error}: {error.__cause__}")
        return {}
    # The source skips names outside the tree; keep them so that validation reports them as unknown.
    for var, value in environ.items():
        path = var[len(ENV_PREFIX):].lower().split(ENV_NESTED_DELIMITER)
        if path[0] not in GumbeldSettings.model_fields:
            _put(layer, path, value)
    return layer


def _expects_json(path: list[str]) -> bool:
    """Whether the environment source decodes a value at this path as JSON (sections and containers)."""
    model: type[BaseModel] | None = GumbeldSettings
    for i, part in enumerate(path):
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return False
        model = _section_type(field)
        if model is None:
            return i == len(path) - 1 and _takes_json(field.annotation)
    return True


def _file_layer(path: Path, problems: list[str]) -> dict[str, Any]:
    if not path.exists():
        problems.append(f"config file {path}: no such file")
    elif not path.is_file():
        problems.append(f"config file {path}: not a regular file")
    else:
        try:
            return TomlConfigSettingsSource(_SourceSchema, toml_file=path)()
        except tomllib.TOMLDecodeError as error:
            problems.append(f"config file {path}: invalid TOML: {error}")
        except (OSError, UnicodeDecodeError) as error:
            problems.append(f"config file {path}: cannot read: {getattr(error, 'strerror', None) or error}")
    return {}


def _put(tree: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        child = tree.get(part)
        if not isinstance(child, dict):
            child = tree[part] = {}
        tree = child
    tree[path[-1]] = value


def _merge(lower: dict[str, Any], higher: dict[str, Any], model: type[BaseModel] | None) -> dict[str, Any]:
    """``higher`` over ``lower``: sections merge key by key, any other value replaces as a whole."""
    merged = dict(lower)
    for key, value in higher.items():
        section = _section_type(model.model_fields.get(key)) if model is not None else None
        if section is not None and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value, section)
        else:
            merged[key] = value
    return merged


@dataclass
class _Origins:
    """Finds which source supplied the value at a path, to say so in error messages."""

    cli_layer: dict[str, Any]
    overrides: Mapping[str, Any]
    env_layer: dict[str, Any]
    environ: Mapping[str, str]
    file_layer: dict[str, Any]
    file_path: Path | None

    def of(self, loc: tuple[str, ...]) -> str | None:
        for i in range(len(loc), 0, -1):
            if ".".join(loc[:i]) in self.overrides:
                return f"--{'.'.join(loc[:i])}"
        if _contains(self.env_layer, loc):
            by_upper = {var.upper(): var for var in self.environ}
            for i in range(len(loc), 0, -1):
                var = by_upper.get(ENV_PREFIX + ENV_NESTED_DELIMITER.join(loc[:i]).upper())
                if var is not None:
                    return var
            below = ENV_PREFIX + ENV_NESTED_DELIMITER.join(loc).upper() + ENV_NESTED_DELIMITER
            return ", ".join(sorted(var for upper, var in by_upper.items() if upper.startswith(below)))
        if _contains(self.file_layer, loc):
            return str(self.file_path)
        return None


def _contains(tree: Any, loc: tuple[str, ...]) -> bool:
    for part in loc:
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


def _describe(error: Mapping[str, Any], origins: _Origins) -> str:
    loc = tuple(str(part) for part in error["loc"])
    name = ".".join(loc)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown setting"
        known = [leaf.name for leaf in leaf_settings()]
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        if close:
            message += f"; did you mean {close[0]}?"
    if not loc:
        return message  # a check across settings; its message names them
    details = []
    value = error.get("input")
    if error["type"] != "missing" and (not isinstance(value, dict) or error["type"] == "extra_forbidden"):
        details.append(f"got {_show(value)}")
    origin = origins.of(loc)
    if origin:
        details.append(f"from {origin}")
    return f"{name}: {message}" + (f" ({', '.join(details)})" if details else "")


def _show(value: Any) -> str:
    if isinstance(value, str) and value and value.strip() == value:
        text = value
    else:
        text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
