"""How a section of gumbeld's settings is declared: by hand, or from a dataclass of the learning core.

A :class:`Section` is a frozen pydantic model that refuses unknown names. The learning core's
settings (``model.temperature.*``, ``model.*`` but keys and categories) are declared and bounded
once, by the dataclasses of :mod:`gumbel_models.config`: :func:`settings_of` makes their sections,
each value checked by the core's own rule (:func:`core_rule`), and :meth:`CoreSettings.build` makes
the dataclass back from the settings.
"""
from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from gumbel_models.fields import check_field, setting_fields


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CoreSettings(Section):
    """A section whose settings a dataclass of the learning core declares (see :func:`settings_of`)."""
    core: ClassVar[type]

    def build(self, **others: Any) -> Any:
        """The core's dataclass with these settings; ``others`` gives its fields that are not settings."""
        values = {name: getattr(self, name) for name in setting_fields(self.core)}
        return self.core(**{k: v.build() if isinstance(v, CoreSettings) else v for k, v in values.items()}, **others)


def settings_of(core: type, **sections: type[CoreSettings]) -> type[CoreSettings]:
    """A :class:`CoreSettings` with the setting fields of the dataclass ``core`` (name, type, default and
    description), each checked by :func:`core_rule`; ``sections`` holds the section of a dataclass field."""
    declared = {name: (sections[name], sections[name]()) if name in sections else
                (Annotated[hint, core_rule(core, name)], Field(default, description=description))
                for name, (hint, default, description) in setting_fields(core).items()}
    section = create_model(f"{core.__name__}Settings", __base__=CoreSettings, __module__=__name__, **declared)
    section.core = core
    return section


def core_rule(core: type, name: str) -> AfterValidator:
    """Checks a setting by the core's rule for its field ``name``; None passes where the setting's type admits it."""
    return AfterValidator(lambda value: value if value is None else check_field(core, name, value))
