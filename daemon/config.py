"""Reading the settings of :mod:`daemon.settings`; the only place that reads the environment.

Precedence, highest first: flags (``--metrics.port 9000``), the environment (``GUMBELD_METRICS__PORT=9000``),
the TOML file (``--config PATH`` or ``$GUMBELD_CONFIG``; ``[metrics]`` ``port = 9000``), the defaults.
pydantic-settings reads each source and makes the flags with their help. Added here is what it lacks: a
higher source's dict or list setting replaces the lower one's whole (sections merge setting by setting),
unknown settings and a missing file are errors, and each problem names its setting and where it came from.
"""
from __future__ import annotations

import argparse
import difflib
import functools
import json
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python
from pydantic_settings import (
    BaseSettings, CliSettingsSource, EnvSettingsSource, SettingsConfigDict, SettingsError, TomlConfigSettingsSource)

from daemon.settings import GumbeldSettings

ENV_PREFIX = "GUMBELD_"
ENV_NESTED_DELIMITER = "__"
CONFIG_FILE_ENV = "GUMBELD_CONFIG"


class ConfigError(Exception):
    """Invalid configuration; ``problems`` holds one human-readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class _SourceSchema(GumbeldSettings, BaseSettings):
    """Tells the pydantic-settings sources the tree, how the environment spells it and how flags look."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER, case_sensitive=False, extra="forbid",
        cli_show_env_vars=True, cli_exit_on_error=False)


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """Adds a ``--<dotted name>`` flag per setting and section to ``parser``, helped with its environment variable."""
    CliSettingsSource(_SourceSchema, root_parser=parser)


@functools.cache
def _flags() -> CliSettingsSource:
    return CliSettingsSource(_SourceSchema, cli_prog_name="gumbeld")


# One source: its values, and by path where each was given (a flag, an environment variable, the file).
_Layer = tuple[dict[str, Any], dict[tuple[str, ...], str]]


def load_settings(flags: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None,
                  config_file: str | os.PathLike[str] | None = None) -> GumbeldSettings:
    """The effective settings; raises :class:`ConfigError` listing every problem found.

    ``flags`` maps dotted names to flag values: strings as typed, lists of them (a repeated flag) or typed
    values. ``env`` defaults to ``os.environ``; ``config_file`` to ``$GUMBELD_CONFIG`` (neither: no file)."""
    env = os.environ if env is None else env
    if config_file is None:
        config_file = next((v for k, v in env.items() if k.upper() == CONFIG_FILE_ENV and v), None)
    env_names = ((var[len(ENV_PREFIX):].lower().replace(ENV_NESTED_DELIMITER, "."), value, var)
                 for var, value in env.items() if var.upper().startswith(ENV_PREFIX) and var.upper() != CONFIG_FILE_ENV)
    problems: list[str] = []
    layers = [  # lowest precedence first
        _file_layer(Path(config_file), problems) if config_file is not None else ({}, {}),
        _layer(env_names, functools.partial(_read_env, EnvSettingsSource(_SourceSchema)), problems),
        _layer(((name, value, f"--{name}") for name, value in (flags or {}).items()), _read_flag, problems),
    ]
    if problems:
        raise ConfigError(problems)
    merged: dict[str, Any] = {}
    for values, _ in layers:
        merged = _merge(merged, values, GumbeldSettings)
    try:
        return GumbeldSettings.model_validate(merged)
    except ValidationError as error:
        raise ConfigError([_describe(e, layers) for e in error.errors()]) from None


def _read_env(source: EnvSettingsSource, var: str, value: str) -> dict[str, Any]:
    source.env_vars = {var.lower(): value}
    return source()


def _read_flag(flag: str, value: Any) -> dict[str, Any]:
    if flag[2:] not in _flags().env_var_names:
        return {}
    values = value if isinstance(value, list) else [value]  # a list: the flag given more than once
    return _flags()(args=[f"{flag}={v if isinstance(v, str) else json.dumps(to_jsonable_python(v))}" for v in values])()


def _layer(items: Iterable[tuple[str, Any, str]], read: Callable[[str, Any], dict[str, Any]],
           problems: list[str]) -> _Layer:
    """One source, each (dotted name, value, origin) read alone so that a value the library cannot
    decode names its setting; a name the library skips is kept, for validation to call unknown."""
    values: dict[str, Any] = {}
    given: dict[tuple[str, ...], str] = {}
    for name, value, origin in items:
        try:
            tree = read(origin, value)
        except SettingsError as error:
            problems.append(f"{name}: not valid JSON: {error.__cause__ or error} (got {_show(value)}, from {origin})")
            continue
        given[path := tuple(name.split("."))] = origin
        values = _merge(values, tree or functools.reduce(lambda inner, part: {part: inner}, reversed(path), value), None)
    return values, given


def _file_layer(path: Path, problems: list[str]) -> _Layer:
    if not path.is_file():
        problems.append(f"config file {path}: {'not a regular file' if path.exists() else 'no such file'}")
        return {}, {}
    try:
        return TomlConfigSettingsSource(_SourceSchema, toml_file=path)(), {(): str(path)}
    except tomllib.TOMLDecodeError as error:
        problems.append(f"config file {path}: invalid TOML: {error}")
    except (OSError, UnicodeDecodeError) as error:
        problems.append(f"config file {path}: cannot read: {getattr(error, 'strerror', None) or error}")
    return {}, {}


def _merge(lower: dict[str, Any], higher: dict[str, Any], model: type[BaseModel] | None) -> dict[str, Any]:
    """``higher`` over ``lower``: sections (without a model, every dict) merge key by key; other values replace."""
    merged = dict(lower)
    for key, value in higher.items():
        section = model.model_fields[key].annotation if model is not None and key in model.model_fields else None
        section = section if isinstance(section, type) and issubclass(section, BaseModel) else None
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and (model is None or section is not None):
            merged[key] = _merge(merged[key], value, section)
        else:
            merged[key] = value
    return merged


def _origin(loc: tuple[str, ...], layers: list[_Layer]) -> str | None:
    """Where the value at ``loc`` came from: the highest source that gave it, or gave values below it."""
    for _, given in reversed(layers):
        above = [path for path in given if loc[:len(path)] == path]
        below = sorted(origin for path, origin in given.items() if path[:len(loc)] == loc)
        if above or below:
            return given[max(above, key=len)] if above else ", ".join(below)
    return None


def _describe(error: Mapping[str, Any], layers: list[_Layer]) -> str:
    loc = tuple(str(part) for part in error["loc"])
    name = ".".join(loc)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(name, _flags().env_var_names, n=1, cutoff=0.75)
        message = "unknown setting" + (f"; did you mean {close[0]}?" if close else "")
    if not loc:
        return message  # a check across settings; its message names them
    value = error.get("input")
    shown = error["type"] != "missing" and (not isinstance(value, dict) or error["type"] == "extra_forbidden")
    details = [f"got {_show(value)}"] if shown else []
    if origin := _origin(loc, layers):
        details.append(f"from {origin}")
    return f"{name}: {message}" + (f" ({', '.join(details)})" if details else "")


def _show(value: Any) -> str:
    text = value if isinstance(value, str) and value and value.strip() == value else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
