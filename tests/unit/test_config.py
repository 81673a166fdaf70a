"""Settings: secrets refused outside development, TOML file, unknown keys rejected."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from doorwarden.config import CONFIG_FILE_ENV, DEFAULT_SECRET, Settings, settings_documentation

STRONG = "s" * 48


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("DOORWARDEN_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("secret", ["", DEFAULT_SECRET, "short-secret"])
def test_missing_default_or_short_secrets_are_refused_outside_development(secret: str) -> None:
    with pytest.raises(ValidationError, match="DOORWARDEN_SECRET_KEY"):
        Settings(secret_key=secret)


def test_development_mode_generates_a_secret() -> None:
    settings = Settings(development=True)
    assert len(settings.secret_key.get_secret_value()) >= 32
    assert Settings(development=True).secret_key != settings.secret_key


def test_environment_variables_with_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOORWARDEN_SECRET_KEY", STRONG)
    monkeypatch.setenv("DOORWARDEN_BIND_PORT", "9443")
    monkeypatch.setenv("DOORWARDEN_DATA_DIR", str(tmp_path))
    settings = Settings()
    assert settings.bind_port == 9443
    assert (
        settings.effective_database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/doorwarden.db"
    )
    assert not settings.cookies_secure


def test_toml_file_and_its_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "doorwarden.toml"
    config.write_text(
        f'secret_key = "{STRONG}"\npublic_base_url = "https://door.example"\nsignup_mode = "open"\n'
    )
    monkeypatch.setenv(CONFIG_FILE_ENV, str(config))
    settings = Settings()
    assert settings.cookies_secure and settings.signup_mode == "open"
    # The environment wins over the file.
    monkeypatch.setenv("DOORWARDEN_SIGNUP_MODE", "invite")
    assert Settings().signup_mode == "invite"

    config.write_text(f'secret_key = "{STRONG}"\nsecrett_key = "typo"\n')
    with pytest.raises(ValidationError, match="secrett_key"):
        Settings()
    config.write_text("secret_key = \n")
    with pytest.raises(ValueError, match="line 1"):
        Settings()
    monkeypatch.setenv(CONFIG_FILE_ENV, str(tmp_path / "missing.toml"))
    with pytest.raises(ValueError, match="no such file"):
        Settings()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bind_port", 0),
        ("public_base_url", "ftp://x"),
        ("signup_mode", "everyone"),
        ("max_body_bytes", 10),
    ],
)
def test_invalid_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(secret_key=STRONG, **{field: value})


def test_every_setting_is_documented() -> None:
    rows = settings_documentation()
    assert {row["env"] for row in rows} >= {
        "DOORWARDEN_DATABASE_URL",
        "DOORWARDEN_SECRET_KEY",
        "DOORWARDEN_BIND_HOST",
        "DOORWARDEN_PUBLIC_BASE_URL",
    }
    assert all(row["title"] and row["description"] for row in rows)


@pytest.mark.parametrize(
    ("name", "at_most", "above"),
    [
        ("community_max_square_miles", 0.5, 0.51),
        ("community_max_hours", 12, 13),
        ("emergency_max_hours", 24, 25),
        ("emergency_max_devices", 5, 6),
        ("preservation_days", 90, 91),
    ],
)
def test_the_legal_limits_can_be_tightened_never_loosened(
    name: str, at_most: float, above: float
) -> None:
    """The limits the law or the platform's promises set are caps an operator may lower."""
    assert getattr(Settings(development=True, **{name: at_most}), name) == at_most
    with pytest.raises(ValidationError, match=name):
        Settings(development=True, **{name: above})


@pytest.mark.parametrize(
    ("name", "floor"),
    [("coverage_min_age_days", 7), ("coverage_move_days", 7), ("community_min_households", 5)],
)
def test_privacy_settings_have_a_floor_outside_development(name: str, floor: int) -> None:
    # What keeps one home from being singled out (docs/threat-model.md 2 and 4).
    with pytest.raises(ValidationError, match=name):
        Settings(secret_key="x" * 48, **{name: floor - 1})
    assert getattr(Settings(secret_key="x" * 48, **{name: floor}), name) == floor
    assert getattr(Settings(development=True, **{name: 1}), name) == 1  # the demo
