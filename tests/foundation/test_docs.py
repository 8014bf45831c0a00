"""The README documents every setting the app reads (a user configures from it)."""
import json
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


def test_the_local_settings_sample_holds_every_setting_with_local_values():
    from scripts.sample_settings import PATH, render
    assert PATH.read_text() == render(), "run: python -m scripts.sample_settings"
    values = json.loads(PATH.read_text())["Values"]
    assert set(_settings(Settings)) <= set(values)
    assert values["OPS_TIMER_DRY_RUN"] == "true" and values["OPS_CREDENTIAL"] == "sandbox"


def test_the_local_settings_sample_loads_as_valid_settings(clean_env):
    monkeypatch = clean_env
    """What `func start` would put in the environment is a valid, loopback-only configuration
    (empty values count as unset, as in the Azure portal)."""

    from jobs.settings import is_loopback, load_settings
    from scripts.sample_settings import PATH
    for key, value in json.loads(PATH.read_text())["Values"].items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    assert settings.dev_hours.deny_name_pattern is None
    assert all(is_loopback(url) for url in settings.endpoints().values() if url)
