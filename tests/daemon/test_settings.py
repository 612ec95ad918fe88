"""The learning core's settings are its dataclasses' fields, made into settings by daemon.settings."""
import dataclasses

from daemon.config import load_settings
from daemon.settings import OPEN_SMALLEST_CLASS, ModelSettings, TemperatureSettings
from gumbel_models import GANConfig, TemperatureSchedule

NOT_SETTINGS = {"n_categories", "logit_range", "real_batch"}  # given by the categories, or for benches only
FROM_ONE_SETTING = {"half_life", "half_life_ms"}  # model.half_life: events (a number) or event time (a duration)


def test_the_learning_settings_are_the_cores_fields_with_their_defaults_and_descriptions():
    assert ModelSettings.model_fields["temperature"].annotation is TemperatureSettings
    for core, section in ((GANConfig(n_categories=2), ModelSettings), (TemperatureSchedule(), TemperatureSettings)):
        for field in dataclasses.fields(core):
            if field.name in NOT_SETTINGS | FROM_ONE_SETTING or field.name == "temperature":
                continue
            setting = section.model_fields[field.name]
            assert (setting.default, setting.description) == (getattr(core, field.name), field.metadata["description"])


def test_the_settings_build_the_config_the_core_would_be_given():
    settings = load_settings({"model.categories": '["a", "b", "c"]', "model.generator_lr": "0.01",
                              "model.betas": "[0.4, 0.9]", "model.reference_categories": "null",
                              "model.temperature.schedule": "cosine", "model.temperature.steps": "10",
                              "model.dtype": "float64", "source.kind": "kafka"}, env={})
    assert settings.model.gan_config() == GANConfig(
        n_categories=3, generator_lr=0.01, betas=(0.4, 0.9), reference_categories=None,
        temperature=TemperatureSchedule("cosine", steps=10), dtype="float64")
    assert ModelSettings().gan_config() == GANConfig(n_categories=5)
    assert ModelSettings(categories="open").gan_config() == GANConfig(n_categories=OPEN_SMALLEST_CLASS)


def test_a_half_life_is_a_number_of_events_or_a_duration_of_event_time():
    assert ModelSettings(half_life=2000).gan_config() == GANConfig(n_categories=5, half_life=2000.0)
    assert ModelSettings(half_life="2000").gan_config() == GANConfig(n_categories=5, half_life=2000.0)
    assert ModelSettings(half_life="5m").gan_config() == GANConfig(n_categories=5, half_life_ms=300_000.0)
    assert ModelSettings(half_life="1.5h").half_life_ms == 5_400_000.0
    assert ModelSettings(half_life=2000).half_life_ms is None
    for bad, says in ((0, "half_life must be a finite number > 0"), ("0s", "longer than 0"),
                      ("5 parsecs", "a number of events or a duration"), (True, "a number of events or a duration")):
        try:
            ModelSettings(half_life=bad)
        except ValueError as error:
            assert says in str(error), (bad, str(error))
        else:
            raise AssertionError(f"half_life = {bad!r} was accepted")
