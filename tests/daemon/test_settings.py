"""The learning core's settings are its dataclasses' fields, made into settings by daemon.settings."""
import dataclasses

from daemon.config import load_settings
from daemon.settings import OPEN_SMALLEST_CLASS, ModelSettings, TemperatureSettings
from gumbel_models import GANConfig, TemperatureSchedule

NOT_SETTINGS = {"n_categories", "logit_range", "real_batch"}  # given by the categories, or for benches only


def test_the_learning_settings_are_the_cores_fields_with_their_defaults_and_descriptions():
    assert ModelSettings.model_fields["temperature"].annotation is TemperatureSettings
    for core, section in ((GANConfig(n_categories=2), ModelSettings), (TemperatureSchedule(), TemperatureSettings)):
        for field in dataclasses.fields(core):
            if field.name in NOT_SETTINGS or field.name == "temperature":
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
