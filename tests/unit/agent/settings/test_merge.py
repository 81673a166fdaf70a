"""The web's overrides laid over a camera's YAML (agent/settings/merge.py)."""

from __future__ import annotations

import pytest

from doorwarden.agent.config.models import CameraConfig
from doorwarden.agent.settings.merge import file_values, merge
from doorwarden.formats.camera_settings import FIELDS, SettingsError

TRIANGLE = [[0.0, 0.0], [0.5, 0.0], [0.0, 0.5]]
SQUARE = [[0.5, 0.5], [1.0, 0.5], [1.0, 1.0], [0.5, 1.0]]


def base(**overrides: object) -> CameraConfig:
    body: dict[str, object] = {
        "name": "front",
        "source": {"kind": "synthetic"},
        "privacy_zones": [TRIANGLE],
        "record": {"pre_roll_s": 2, "post_roll_s": 4},
    }
    return CameraConfig.model_validate(body | overrides)


EVERY_FIELD = {
    "motion.zones": [SQUARE],
    "motion.ignore": [TRIANGLE],
    "privacy_zones": [SQUARE, TRIANGLE],
    "motion.sensitivity": 0.9,
    "motion.min_area": 0.01,
    "motion.analysis_fps": 2.0,
    "record.pre_roll_s": 1.0,
    "record.post_roll_s": 8.0,
    "record.min_clip_s": 2.0,
    "record.max_clip_s": 30.0,
    "detection.enabled": False,
    "detect.person": False,
    "notify.labels": ["ring"],
}


def test_every_field_lands_where_the_yaml_has_it_and_says_it_came_from_the_web() -> None:
    assert set(EVERY_FIELD) == set(FIELDS)
    eff = merge(base(), EVERY_FIELD, version=7)
    cfg = eff.config
    assert [list(map(list, p)) for p in cfg.motion.zones] == [SQUARE]
    assert [list(map(list, p)) for p in cfg.motion.ignore] == [TRIANGLE]
    assert [list(map(list, p)) for p in cfg.privacy_zones] == [SQUARE, TRIANGLE]
    assert (cfg.motion.sensitivity, cfg.motion.min_area, cfg.motion.analysis_fps) == (0.9, 0.01, 2)
    assert (cfg.record.pre_roll_s, cfg.record.post_roll_s) == (1, 8)
    assert (cfg.record.min_clip_s, cfg.record.max_clip_s) == (2, 30)
    assert cfg.detect.kind.value == "none"  # detect.person off: the detector is not run
    assert eff.detection_enabled is False
    assert eff.notify_labels == ["ring"]
    assert eff.values == EVERY_FIELD
    assert set(eff.sources.values()) == {"web"}
    assert {line[2] for line in eff.field_lines()} == {"web (v7)"}
    # What the web does not set stays the file's.
    assert cfg.motion.threshold == base().motion.threshold and cfg.name == "front"


def test_no_overrides_is_the_file_itself() -> None:
    eff = merge(base(), {})
    assert eff.config == base()
    assert eff.detection_enabled is True and eff.version == 0
    assert set(eff.sources.values()) == {"file"}
    assert eff.values == file_values(base())
    assert eff.values["privacy_zones"] == [TRIANGLE]
    assert eff.values["detect.person"] is True and eff.values["notify.labels"] is None


def test_a_reset_brings_back_the_file_value_of_each_field() -> None:
    web = merge(base(), {"privacy_zones": [], "record.pre_roll_s": 0})
    assert web.config.privacy_zones == [] and web.config.record.pre_roll_s == 0
    assert web.sources["privacy_zones"] == "web"
    reset = merge(base(), {})  # settings {} from the server: every field back to the file
    assert reset.config.privacy_zones == base().privacy_zones
    assert reset.config.record.pre_roll_s == 2


def test_person_labelling_on_for_a_camera_whose_file_has_no_detector_uses_nanodet() -> None:
    eff = merge(base(detect={"kind": "none"}), {"detect.person": True})
    assert eff.config.detect.kind.value == "nanodet"
    assert merge(base(detect={"kind": "none"}), {}).values["detect.person"] is False


def test_a_combination_the_file_would_refuse_is_refused_naming_the_web_field() -> None:
    person_only = base(detect={"kind": "hog", "alert": "person_only"})
    with pytest.raises(SettingsError) as caught:
        merge(person_only, {"detect.person": False})
    assert caught.value.field == "detect.person"
    assert "person_only" in caught.value.message
    with pytest.raises(SettingsError) as caught:
        merge(base(record={"min_clip_s": 10, "max_clip_s": 60}), {"record.max_clip_s": 5})
    assert caught.value.field == "record.max_clip_s"


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"privacy_zones": [[[0, 0], [2, 0], [0, 1]]]}, "privacy_zones.0.1.0"),
        ({"privacy_zones": [[[0, 0], [1, 0]]]}, "privacy_zones.0"),
        ({"motion.sensitivity": "high"}, "motion.sensitivity"),
        ({"record.min_clip_s": 9, "record.max_clip_s": 3}, ""),
        ({"colour": "red"}, "colour"),
    ],
)
def test_malformed_overrides_are_refused_with_the_field_named(
    settings: dict[str, object], field: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        merge(base(), settings)
    assert caught.value.field == field
