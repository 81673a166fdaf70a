"""The configuration file loader: every error names the file, the line and the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from doorwarden.agent.config.docs import EXAMPLE_YAML, describe_config
from doorwarden.agent.config.file import ConfigFileError, load_agent_config
from doorwarden.agent.config.models import DetectorKind, FileSource, RtspSource
from tests.paths import DOCS

DOC = DOCS / "agent-config.md"

VALID_YAML = """\
spool_dir: out/spool
cameras:
  - name: front-door
    source:
      kind: rtsp
      url: rtsp://cam.local/stream
    motion:
      threshold: 30
      ignore:
        - [[0, 0], [0.5, 0], [0.5, 0.5]]
  - name: garden
    source: {kind: file, path: videos/garden.mp4, pace: false}
    detect:
      kind: onnx
      model_path: models/m.onnx
      labels: [person, car]
"""

VALID_TOML = """\
spool_dir = "out/spool"

[[cameras]]
name = "front-door"
source = { kind = "rtsp", url = "rtsp://cam.local/stream" }

[cameras.motion]
threshold = 30
ignore = [[[0, 0], [0.5, 0], [0.5, 0.5]]]

[[cameras]]
name = "garden"
source.kind = "file"
source.path = "videos/garden.mp4"
source.pace = false

[cameras.detect]
kind = "onnx"
model_path = "models/m.onnx"
labels = ["person", "car"]
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path) -> ConfigFileError:
    with pytest.raises(ConfigFileError) as info:
        load_agent_config(path)
    return info.value


@pytest.mark.parametrize(("name", "text"), [("a.yaml", VALID_YAML), ("a.toml", VALID_TOML)])
def test_valid_files_load_and_resolve_relative_paths(tmp_path: Path, name: str, text: str) -> None:
    config = load_agent_config(_write(tmp_path, name, text))
    front, garden = config.cameras
    assert front.name == "front-door"
    assert isinstance(front.source, RtspSource)
    assert front.motion.threshold == 30
    assert front.motion.ignore == [[(0, 0), (0.5, 0), (0.5, 0.5)]]
    assert isinstance(garden.source, FileSource)
    assert garden.source.pace is False
    assert garden.detect.kind is DetectorKind.onnx
    assert garden.detect.labels == ["person", "car"]
    # Relative to the file's directory, not to the working directory.
    base = tmp_path.resolve()
    assert config.spool_dir == base / "out" / "spool"
    assert config.state_dir == base / "state"  # not given: the default, next to the file
    assert garden.source.path == base / "videos" / "garden.mp4"
    assert garden.detect.model_path == base / "models" / "m.onnx"


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    text = f"spool_dir: {tmp_path / 'abs'}\ncameras: [{{name: a, source: {{kind: synthetic}}}}]\n"
    assert load_agent_config(_write(tmp_path, "c.yml", text)).spool_dir == tmp_path / "abs"


@pytest.mark.parametrize(
    ("name", "text", "line", "key"),
    [
        ("a.yaml", "spool_dir: s\nspol: x\n" + VALID_YAML[VALID_YAML.index("cameras"):], 2,
         "spol"),
        ("a.yaml", VALID_YAML.replace("threshold: 30", "treshold: 30"), 8,
         "cameras[0].motion.treshold"),
        ("a.yaml", VALID_YAML.replace("pace: false}", "pace: false, speed: 2}"), 12,
         "cameras[1].source.speed"),
        ("a.toml", 'spool_dir = "s"\nspol = "x"\n' + VALID_TOML[VALID_TOML.index("[["):], 2,
         "spol"),
        ("a.toml", VALID_TOML.replace("threshold = 30", "treshold = 30"), 8,
         "cameras[0].motion.treshold"),
        ("a.toml", VALID_TOML.replace('labels = ["person", "car"]', 'label = ["x"]'), 20,
         "cameras[1].detect.label"),
    ],
)  # fmt: skip
def test_unknown_key_names_key_and_line(
    tmp_path: Path, name: str, text: str, line: int, key: str
) -> None:
    path = _write(tmp_path, name, text)
    err = _error(path)
    assert (err.line, err.key) == (line, key)
    leaf = key.rsplit(".", 1)[-1]
    assert f"{path}:{line}:" in str(err)
    assert f"{key}: unknown key {leaf!r}" in str(err)


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    err = _error(_write(tmp_path, "a.yaml", VALID_YAML.replace("threshold:", "treshold:")))
    assert "did you mean 'threshold'?" in str(err)
    assert str(err).startswith(f"{tmp_path / 'a.yaml'}:8:7: ")  # column of the key


@pytest.mark.parametrize(
    ("name", "text", "line", "key"),
    [
        ("a.yaml", VALID_YAML.replace("threshold: 30", "threshold: lots"), 8,
         "cameras[0].motion.threshold"),
        ("a.toml", VALID_TOML.replace("threshold = 30", 'threshold = "lots"'), 8,
         "cameras[0].motion.threshold"),
        ("a.yaml", VALID_YAML.replace("url: rtsp://", "url: http://"), 6,
         "cameras[0].source.url"),
    ],
)  # fmt: skip
def test_wrong_type_names_the_line(
    tmp_path: Path, name: str, text: str, line: int, key: str
) -> None:
    err = _error(_write(tmp_path, name, text))
    assert (err.line, err.key) == (line, key)
    assert "(got " in str(err)


def test_missing_key_is_reported_at_its_parent(tmp_path: Path) -> None:
    err = _error(_write(tmp_path, "a.yaml", "cameras:\n  - name: a\n    source: {kind: file}\n"))
    assert (err.line, err.key) == (3, "cameras[0].source.path")
    assert "Field required" in str(err)


def test_rule_across_fields_names_its_table(tmp_path: Path) -> None:
    text = VALID_YAML.replace("      model_path: models/m.onnx\n", "")
    err = _error(_write(tmp_path, "a.yaml", text))
    assert (err.line, err.key) == (13, "cameras[1].detect")
    assert "model_path is required" in str(err)


def test_every_error_is_listed(tmp_path: Path) -> None:
    text = VALID_YAML.replace("threshold: 30", "treshold: 30").replace("pace: false", "pace: 7")
    message = str(_error(_write(tmp_path, "a.yaml", text)))
    assert ":8:7: cameras[0].motion.treshold" in message
    assert ":12:" in message and "cameras[1].source.pace" in message


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("a.yaml", "cameras:\n  - name: a\n    source: {kind: file, path: [x\n  - b\n", 5),
        ("a.yaml", "cameras:\n  - name: a\n\tsource: x\n", 3),
        ("a.toml", "[[cameras]]\nname = 'a'\nsource = {kind = }\n", 3),
    ],
)
def test_syntax_errors_name_the_line(tmp_path: Path, name: str, text: str, line: int) -> None:
    err = _error(_write(tmp_path, name, text))
    assert err.line == line
    assert "syntax error" in str(err)
    assert re.match(rf"^{re.escape(str(tmp_path / name))}:{line}:\d+: ", str(err))


def test_yaml_syntax_error_says_where_the_bracket_opened(tmp_path: Path) -> None:
    text = "cameras:\n  - name: a\n    source: {kind: file, path: [x\n  - b\n"
    assert "at line 3)" in str(_error(_write(tmp_path, "a.yaml", text)))


def test_yaml_cannot_build_python_objects(tmp_path: Path) -> None:
    text = "cameras: !!python/object/apply:os.system ['true']\n"
    err = _error(_write(tmp_path, "a.yaml", text))
    assert err.line == 1


def test_yaml_duplicate_key_is_an_error(tmp_path: Path) -> None:
    err = _error(_write(tmp_path, "a.yaml", "spool_dir: a\nspool_dir: b\ncameras: []\n"))
    assert (err.line, err.key) == (2, "spool_dir")
    assert "duplicate key" in str(err)


@pytest.mark.parametrize("name", ["a.yaml", "a.toml"])
def test_duplicate_camera_names_name_the_second(tmp_path: Path, name: str) -> None:
    text = VALID_YAML if name.endswith("yaml") else VALID_TOML
    text = text.replace("garden", "front-door")
    err = _error(_write(tmp_path, name, text))
    assert (err.line, err.key) == ((11 if name.endswith("yaml") else 12), "cameras[1].name")
    assert "already used by cameras[0]" in str(err)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.yaml", "", "empty"),
        ("a.yaml", "- 1\n- 2\n", "mapping"),
        ("a.json", "{}", "unknown format"),
    ],
)
def test_unusable_files(tmp_path: Path, name: str, text: str, message: str) -> None:
    assert message in str(_error(_write(tmp_path, name, text)))


def test_missing_file(tmp_path: Path) -> None:
    assert "cannot read" in str(_error(tmp_path / "absent.yaml"))


def test_example_is_valid(tmp_path: Path) -> None:
    config = load_agent_config(_write(tmp_path, "example.yaml", EXAMPLE_YAML))
    assert [c.name for c in config.cameras] == ["front-door", "garden"]


def test_documentation_is_current() -> None:
    # Regenerate with: doorwarden agent describe-config > docs/agent-config.md
    assert DOC.read_text(encoding="utf-8") == describe_config()


def test_documentation_mentions_every_field() -> None:
    doc = describe_config()
    for key in ("spool_dir", "analysis_fps", "privacy_zones", "pre_roll_s", "min_confidence"):
        assert f"| `{key}` |" in doc
