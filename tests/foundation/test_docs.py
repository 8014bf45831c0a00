"""The README documents every setting the app reads (a user configures from it)."""
from pathlib import Path

from pydantic import BaseModel

from jobs.settings import Settings, env_name


def _settings(model: type[BaseModel], prefix: tuple[str, ...] = ()):
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _settings(field.annotation, prefix + (name,))
        else:
            yield env_name(*prefix, name)


def test_every_setting_is_in_the_readme():
    readme = Path("README.md").read_text()
    missing = [name for name in _settings(Settings) if f"`{name}`" not in readme]
    assert not missing, f"settings missing from README.md: {missing}"
