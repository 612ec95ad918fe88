"""Loading settings from defaults, a TOML file, the environment and command-line overrides."""
from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import ConfigError, load_settings
from daemon.settings import GumbeldSettings

TWO_KEYS_TOML = """
[model]
n_categories = 2

[source.synthetic.keys.web]
probabilities = [0.25, 0.75]

[source.synthetic.keys.mobile]
probabilities = [0.5, 0.5]
drift = { probabilities = [0.9, 0.1], after_events = 100 }
"""


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gumbeld.toml"
    path.write_text(text)
    return path


def problems_of(overrides=None, env=None, config_file=None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(overrides or {}, env=env or {}, config_file=config_file)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def test_without_any_source_the_declared_defaults_apply():
    settings = load_settings({}, env={})
    assert settings == GumbeldSettings()
    assert settings.metrics.port == 9464
    assert list(settings.source.synthetic.keys) == ["default"]


def test_the_process_environment_is_read_only_when_no_env_is_given(monkeypatch):
    monkeypatch.setenv("GUMBELD_METRICS__PORT", "9100")
    assert load_settings({}, env={}).metrics.port == 9464
    assert load_settings({}).metrics.port == 9100


def test_settings_from_the_environment_including_nested_sections():
    settings = load_settings({}, env={
        "GUMBELD_METRICS__PORT": "9000",
        "GUMBELD_MODEL__TEMPERATURE__INITIAL": "1.5",
        "GUMBELD_MODEL__TEMPERATURE__MINIMUM": "0.25",
        "GUMBELD_MODEL__HARD": "true",
        "GUMBELD_PUBLISH_INTERVAL": "2.5",
        "HOME": "/elsewhere",  # without the prefix: not a setting
    })
    assert settings.metrics.port == 9000
    assert settings.model.temperature.minimum == 0.25
    assert settings.publish_interval == 2.5


def test_settings_from_a_toml_file(tmp_path):
    path = write_toml(tmp_path, '[metrics]\nport = 9001\nhost = "0.0.0.0"\n\n'
                                '[model.temperature]\ninitial = 1.5\nminimum = 0.3\n\n[log]\nformat = "json"\n')
    settings = load_settings({}, env={}, config_file=path)
    assert (settings.metrics.port, settings.metrics.host) == (9001, "0.0.0.0")
    assert settings.model.temperature.minimum == 0.3
    assert settings.log.format == "json"


def test_the_file_may_be_named_by_gumbeld_config_and_an_explicit_path_wins(tmp_path):
    named_by_env = write_toml(tmp_path, "[metrics]\nport = 9001\n")
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("[metrics]\nport = 9002\n")
    env = {"GUMBELD_CONFIG": str(named_by_env)}
    assert load_settings({}, env=env).metrics.port == 9001
    assert load_settings({}, env=env, config_file=explicit).metrics.port == 9002


def test_settings_from_command_line_overrides_as_strings_or_values():
    settings = load_settings({"metrics.port": "9002", "model.temperature.initial": "1.5",
                              "model.temperature.minimum": "0.4", "checkpoint.fresh_start": "true",
                              "training.seed": 7}, env={})
    assert settings.metrics.port == 9002
    assert settings.model.temperature.minimum == 0.4
    assert settings.checkpoint.fresh_start is True
    assert settings.training.seed == 7


@pytest.mark.parametrize("sources, expected", [
    ({"file"}, 1001), ({"env"}, 1002), ({"cli"}, 1003),
    ({"file", "env"}, 1002), ({"file", "cli"}, 1003), ({"env", "cli"}, 1003), ({"file", "env", "cli"}, 1003),
])
def test_command_line_beats_environment_beats_file(tmp_path, sources, expected):
    path = write_toml(tmp_path, "[metrics]\nport = 1001\n") if "file" in sources else None
    env = {"GUMBELD_METRICS__PORT": "1002"} if "env" in sources else {}
    overrides = {"metrics.port": "1003"} if "cli" in sources else {}
    assert load_settings(overrides, env=env, config_file=path).metrics.port == expected


def test_sections_merge_setting_by_setting_across_sources(tmp_path):
    path = write_toml(tmp_path, '[metrics]\nhost = "0.0.0.0"\n\n[model.temperature]\ninitial = 3.0\n')
    settings = load_settings({"model.temperature.minimum": "0.5"},
                             env={"GUMBELD_METRICS__PORT": "9003"}, config_file=path)
    assert (settings.metrics.host, settings.metrics.port) == ("0.0.0.0", 9003)
    assert (settings.model.temperature.initial, settings.model.temperature.minimum) == (3.0, 0.5)


def test_a_dict_setting_as_a_toml_table(tmp_path):
    settings = load_settings({}, env={}, config_file=write_toml(tmp_path, TWO_KEYS_TOML))
    keys = settings.source.synthetic.keys
    assert set(keys) == {"web", "mobile"}
    assert keys["web"].probabilities == [0.25, 0.75]
    assert keys["mobile"].drift.after_events == 100


def test_a_dict_setting_as_json_in_the_environment_replaces_the_files_whole_dict(tmp_path):
    env = {"GUMBELD_SOURCE__SYNTHETIC__KEYS": '{"eu": {"probabilities": [0.1, 0.9]}}'}
    settings = load_settings({}, env=env, config_file=write_toml(tmp_path, TWO_KEYS_TOML))
    assert list(settings.source.synthetic.keys) == ["eu"]
    assert settings.source.synthetic.keys["eu"].probabilities == [0.1, 0.9]


def test_list_and_tuple_settings_take_json_on_the_command_line():
    settings = load_settings({"model.categories": '["red", "green", "blue"]', "model.betas": "[0.4, 0.9]",
                              "source.synthetic.keys": '{"k": {"probabilities": [0.2, 0.3, 0.5]}}'}, env={})
    assert settings.model.labels == ["red", "green", "blue"]
    assert settings.model.betas == (0.4, 0.9)


def test_list_settings_also_take_comma_separated_values_or_repeated_flags():
    five = ["a", "b", "c", "d", "e"]  # one per entry of the default synthetic distribution
    assert load_settings({"model.categories": "a,b,c,d,e"}, env={}).model.labels == five
    assert load_settings({"model.categories": five}, env={}).model.labels == five


def test_a_dict_setting_on_the_command_line_replaces_the_environments_whole_dict():
    env = {"GUMBELD_SOURCE__SYNTHETIC__KEYS": '{"eu": {"probabilities": [0.1, 0.9]}}'}
    settings = load_settings({"source.synthetic.keys": '{"us": {"probabilities": [0.2, 0.8]}}'},
                             env={**env, "GUMBELD_MODEL__N_CATEGORIES": "2"})
    assert list(settings.source.synthetic.keys) == ["us"]


@pytest.mark.parametrize("source", ["cli", "env", "file"])
def test_an_out_of_range_value_names_the_setting_the_value_and_its_source(tmp_path, source):
    path = write_toml(tmp_path, "[metrics]\nport = 70000\n") if source == "file" else None
    env = {"GUMBELD_METRICS__PORT": "70000"} if source == "env" else {}
    overrides = {"metrics.port": "70000"} if source == "cli" else {}
    [problem] = problems_of(overrides, env, path)
    origin = {"cli": "--metrics.port", "env": "GUMBELD_METRICS__PORT", "file": str(path)}[source]
    assert problem == f"metrics.port: Input should be less than or equal to 65535 (got 70000, from {origin})"


def test_a_value_of_the_wrong_type_is_reported_for_each_setting():
    problems = problems_of({"metrics.port": "eighty", "model.hard": "perhaps"},
                           env={"GUMBELD_MODEL__TEMPERATURE__MINIMUM": "low"})
    assert len(problems) == 3
    joined = "\n".join(problems)
    assert "metrics.port: Input should be a valid integer" in joined and "got eighty" in joined
    assert "model.hard: Input should be a valid boolean" in joined
    assert "model.temperature.minimum: Input should be a valid number" in joined


@pytest.mark.parametrize("overrides, env, toml, name", [
    ({"metrics.prot": "1"}, {}, None, "metrics.prot"),
    ({}, {"GUMBELD_METRICS__PROT": "1"}, None, "metrics.prot"),
    ({}, {}, "[metrics]\nprot = 1\n", "metrics.prot"),
    ({}, {"GUMBELD_METRICS_PORT": "1"}, None, "metrics_port"),  # one underscore too few
    ({}, {"GUMBELD_FOO__BAR": "1"}, None, "foo"),
    ({}, {}, "[metric]\nport = 1\n", "metric"),
])
def test_an_unknown_setting_is_reported_from_every_source(tmp_path, overrides, env, toml, name):
    path = write_toml(tmp_path, toml) if toml else None
    [problem] = problems_of(overrides, env, path)
    assert problem.startswith(f"{name}: unknown setting")


def test_an_unknown_setting_close_to_a_known_one_gets_a_suggestion():
    [problem] = problems_of({"metrics.prot": "1"})
    assert problem == "metrics.prot: unknown setting; did you mean metrics.port? (got 1, from --metrics.prot)"


def test_a_missing_config_file_is_an_error_not_an_empty_file(tmp_path):
    missing = tmp_path / "nope.toml"
    assert problems_of(config_file=missing) == [f"config file {missing}: no such file"]
    assert problems_of(env={"GUMBELD_CONFIG": str(missing)}) == [f"config file {missing}: no such file"]
    assert problems_of(config_file=tmp_path) == [f"config file {tmp_path}: not a regular file"]


def test_invalid_toml_is_reported_with_its_position(tmp_path):
    path = write_toml(tmp_path, "[metrics]\nport = = 9000\n")
    [problem] = problems_of(config_file=path)
    assert problem.startswith(f"config file {path}: invalid TOML:")
    assert "line 2" in problem


@pytest.mark.parametrize("overrides, env, expected", [
    ({"source.synthetic.keys": "{web: 1}"}, {}, "source.synthetic.keys: not valid JSON"),
    ({}, {"GUMBELD_SOURCE__SYNTHETIC__KEYS": "{web: 1}"}, "source.synthetic.keys: not valid JSON"),
    ({}, {"GUMBELD_MODEL__BETAS": "0.5,0.9"}, "model.betas: not valid JSON"),
    ({"model.categories": '["a", "b"'}, {}, "model.categories: not valid JSON"),
])
def test_malformed_json_names_the_setting(overrides, env, expected):
    [problem] = problems_of(overrides, env)
    assert problem.startswith(expected)


def test_too_few_categories_for_the_default_synthetic_distribution_names_the_settings():
    [problem] = problems_of({"model.n_categories": "3"})
    assert problem.startswith("source.synthetic.keys.default: probabilities need 3 entries")
    assert "model.n_categories" in problem


def test_an_invalid_distribution_inside_the_dict_setting_names_the_key():
    [problem] = problems_of(env={"GUMBELD_SOURCE__SYNTHETIC__KEYS": '{"web": {"probabilities": [0.5, 0.6]}}'})
    assert problem.startswith("source.synthetic.keys.web.probabilities: probabilities must be >= 0 and sum to 1")
    assert problem.endswith("from GUMBELD_SOURCE__SYNTHETIC__KEYS)")


def test_combinations_the_learning_core_rejects_are_rejected_at_load_time():
    [problem] = problems_of({"model.temperature.initial": "0.5", "model.temperature.minimum": "0.8"})
    assert problem == ("model.temperature: temperature minimum 0.8 exceeds initial 0.5 "
                       "(from --model.temperature.initial, --model.temperature.minimum)")


def test_all_problems_of_all_sources_are_reported_together(tmp_path):
    path = write_toml(tmp_path, "[training]\nmax_step_cells = 0\n")
    problems = problems_of({"metrics.port": "-1"}, {"GUMBELD_LOG__LEVEL": "LOUD"}, path)
    assert [p.split(":")[0] for p in problems] == ["metrics.port", "training.max_step_cells", "log.level"]


@pytest.mark.parametrize("name, value, expected", [
    ("model.half_life", "0", "model.half_life: half_life must be a finite number > 0 or be None"),
    ("model.half_life", "inf", "model.half_life: half_life must be a finite number > 0 or be None"),
    ("model.change_p_value", "1", "model.change_p_value: change_p_value must lie in (0, 1)"),
    ("model.generator_lr", "inf", "model.generator_lr: generator_lr must be a finite number > 0"),
    ("model.samples_per_step", "0", "model.samples_per_step: samples_per_step must be an integer >= 1"),
    ("model.betas", "[0.5, 1.0]", "model.betas: betas must each lie in [0, 1)"),
    ("model.n_categories", "1", "model.n_categories: n_categories must be an integer >= 2"),
    ("model.temperature.initial", "nan", "model.temperature.initial: initial must be a finite number > 0"),
])
def test_learning_settings_are_checked_by_the_learning_cores_rule(name, value, expected):
    [problem] = problems_of({name: value})
    assert problem.startswith(expected) and problem.endswith(f"from --{name})")


def test_open_categories_from_every_source_and_the_settings_they_do_not_go_with(tmp_path):
    for settings in (load_settings({"model.categories": "open"}, env={}),
                     load_settings(env={"GUMBELD_MODEL__CATEGORIES": "open"}),
                     load_settings(env={}, config_file=write_toml(tmp_path, '[model]\ncategories = "open"\n'))):
        assert settings.model.open and settings.model.max_categories == 100_000
    with pytest.raises(ConfigError, match="n_categories does not go with"):
        load_settings({"model.categories": "open", "model.n_categories": "4"}, env={})
    with pytest.raises(ConfigError, match="generated_keys"):
        load_settings({"model.categories": "open", "source.synthetic.generated_keys.count": "3"}, env={})
    assert load_settings({"model.categories": "open", "source.kind": "kafka", "source.kafka.topics": "t"},
                         env={}).model.open


@pytest.mark.parametrize("name, value, complaint", [
    ("source.kafka.category_field", "/properties/a~2b", "is not a JSON Pointer: '~' at position 13"),
    ("source.kafka.key_field", "user..id", "has an empty name between dots"),
    ("source.kafka.category_field", "", "a field path must not be empty"),
])
def test_a_malformed_field_path_is_refused_at_load_with_the_setting_named(name, value, complaint):
    [problem] = problems_of({name: value})
    assert problem.startswith(f"{name}: ") and complaint in problem and problem.endswith(f"from --{name})")


def test_field_paths_in_both_forms_load():
    settings = load_settings({"source.kafka.category_field": "/items/0/category",
                              "source.kafka.key_field": "context.user.id"}, env={}).source.kafka
    assert (settings.category_field, settings.key_field) == ("/items/0/category", "context.user.id")


def test_durations_and_the_time_field_from_every_source():
    settings = load_settings({"model.allowed_lateness": "90s", "source.kafka.time_field": "meta.time"}, env={})
    assert settings.model.allowed_lateness == 90.0 and settings.source.kafka.time_field == "meta.time"
    assert load_settings({}, env={"GUMBELD_MODEL__ALLOWED_LATENESS": "1.5"}).model.allowed_lateness == 1.5
    assert load_settings({}, env={}).model.allowed_lateness is None


@pytest.mark.parametrize("overrides, says", [
    ({"model.allowed_lateness": "5 minutes"}, "text like '90s'"),
    ({"source.kafka.time_field": "ts", "source.kafka.value_format": "text"}, "time_field needs value_format = json"),
])
def test_a_bad_duration_or_time_field_is_refused_with_what_to_write(overrides, says):
    with pytest.raises(ConfigError, match=says):
        load_settings(overrides, env={})
