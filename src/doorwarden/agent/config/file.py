"""Load the agent's configuration file (YAML or TOML) with errors a person can act on.

pydantic says *what* is wrong and at which key path; the file's owner needs *where*.
So the loader keeps a map from key path to (line, column) next to the parsed data and
every error -- syntax, unknown key, wrong type, failed rule -- becomes one
`ConfigFileError` reading `FILE:LINE:COL: cameras[0].motion.treshold: unknown key ...`.

YAML positions are exact: the document is composed with PyYAML's node API (SafeLoader,
so no tag can build an arbitrary object) and every key and list item keeps its mark.
TOML positions are approximate: tomllib reports none, so we scan the text for table
headers (`[a.b]`, `[[cameras]]`) and `key =` lines. Keys inside inline tables or
multi-line arrays take the line of the key that holds them; a `key =` line inside a
multi-line string could be mistaken for a key. That is good enough to point at a typo.
"""

from __future__ import annotations

import difflib
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeGuard

import yaml
from pydantic import BaseModel, ValidationError

from doorwarden.agent.config.models import AgentConfig, CameraConfig, FileSource

KeyPath = tuple[str | int, ...]
# analysis/nanodet.py's MODEL_PATH, named here without importing numpy, OpenCV and
# onnxruntime (a test holds the two equal).
BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "analysis/models/nanodet-coco-416.onnx"
Positions = dict[KeyPath, tuple[int, int]]  # 1-based line, column


class ConfigFileError(Exception):
    """A configuration file that cannot be used; the message names file, line and key."""

    def __init__(
        self, path: Path, message: str, *, line: int | None = None, column: int | None = None,
        key: str = "",
    ) -> None:  # fmt: skip
        self.path, self.line, self.column, self.key = path, line, column, key
        self.detail = message
        where = str(path)
        if line is not None:
            where += f":{line}" + (f":{column}" if column is not None else "")
        super().__init__(f"{where}: {key + ': ' if key else ''}{message}")


def format_key(path: KeyPath) -> str:
    """('cameras', 0, 'motion') -> 'cameras[0].motion'."""
    out = ""
    for seg in path:
        out += f"[{seg}]" if isinstance(seg, int) else (f".{seg}" if out else seg)
    return out


# --- YAML -----------------------------------------------------------------------------


def _yaml_positions(node: yaml.Node, path: KeyPath, out: Positions, file: Path) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            mark = key_node.start_mark
            if key in seen:  # PyYAML would silently keep the last one
                raise ConfigFileError(
                    file, "duplicate key", line=mark.line + 1, column=mark.column + 1,
                    key=format_key((*path, key)),
                )  # fmt: skip
            seen.add(key)
            out[(*path, key)] = (mark.line + 1, mark.column + 1)
            _yaml_positions(value_node, (*path, key), out, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            out[(*path, index)] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _yaml_positions(item, (*path, index), out, file)


def _parse_yaml(text: str, file: Path) -> tuple[Any, Positions]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        positions: Positions = {(): (1, 1)}
        if node is not None:
            _yaml_positions(node, (), positions, file)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and exc.context_mark:  # where the open bracket was
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ConfigFileError(file, f"YAML syntax error: {problem}", line=line, column=col) from exc
    except yaml.YAMLError as exc:
        raise ConfigFileError(file, f"YAML error: {exc}") from exc
    finally:
        loader.dispose()
    return data, positions


# --- TOML -----------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)


def _split_dotted(text: str) -> list[str]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", text)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def _toml_positions(text: str) -> Positions:
    positions: Positions = {(): (1, 1)}
    arrays: dict[KeyPath, int] = {}  # array-of-tables path -> index of its last table
    table: KeyPath = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            resolved: KeyPath = ()
            names = _split_dotted(header.group(2))
            for i, name in enumerate(names):
                resolved = (*resolved, name)
                last = i == len(names) - 1
                if header.group(1) == "[[" and last:
                    arrays[resolved] = arrays.get(resolved, -1) + 1
                if resolved in arrays:
                    positions.setdefault(resolved, (number, 1))
                    resolved = (*resolved, arrays[resolved])
                positions.setdefault(resolved, (number, 1))
            table = resolved
            continue
        key = _KEY.match(line)
        if key:
            path = table
            for name in _split_dotted(key.group(1)):
                path = (*path, name)
                positions.setdefault(path, (number, line.index(line.lstrip()[:1]) + 1))
    return positions


def _parse_toml(text: str, file: Path) -> tuple[Any, Positions]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        line, col = (int(found.group(1)), int(found.group(2))) if found else (None, None)
        raise ConfigFileError(file, f"TOML syntax error: {message}", line=line, column=col) from exc
    return data, _toml_positions(text)


# --- validation -----------------------------------------------------------------------


def _locate(loc: tuple[Any, ...], data: Any) -> KeyPath:
    """pydantic's error location as a path in the file: union tags it inserts (the
    `file` in cameras.0.source.file.path) are not in the data and are dropped."""
    path: KeyPath = ()
    node = data
    for i, seg in enumerate(loc):
        in_dict = isinstance(node, dict) and seg in node
        if in_dict or (isinstance(node, list) and isinstance(seg, int) and 0 <= seg < len(node)):
            node, path = node[seg], (*path, seg)
        elif i == len(loc) - 1 or not isinstance(node, dict | list):
            return (*path, seg)  # a missing key: reported at its parent
    return path


def _position(path: KeyPath, positions: Positions) -> tuple[int, int]:
    for end in range(len(path), -1, -1):
        if path[:end] in positions:
            return positions[path[:end]]
    return (1, 1)


def _model_at(path: KeyPath, data: Any) -> type[BaseModel] | None:
    """The model whose fields are allowed at `path` (for "did you mean")."""
    model: Any = AgentConfig
    node = data
    for seg in path:
        if isinstance(seg, int):
            node = node[seg] if isinstance(node, list) and seg < len(node) else None
            continue
        if not _is_model(model):
            return None
        field = model.model_fields.get(seg)
        if field is None:
            return None
        node = node.get(seg) if isinstance(node, dict) else None
        model = field.annotation
        while typing.get_origin(model) is list:
            model = typing.get_args(model)[0]
        if typing.get_origin(model) in (typing.Union, types.UnionType):
            kind = node.get("kind") if isinstance(node, dict) else None
            members = [m for m in typing.get_args(model) if _is_model(m)]
            kinds = [typing.get_args(m.model_fields["kind"].annotation) for m in members]
            model = next((m for m, k in zip(members, kinds, strict=True) if k == (kind,)), None)
    return model if _is_model(model) else None


def _is_model(t: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _message(error: Any, path: KeyPath, data: Any) -> str:
    if error["type"] == "extra_forbidden":
        model = _model_at(path[:-1], data)
        allowed = list(model.model_fields) if model else []
        close = difflib.get_close_matches(str(path[-1]), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        listed = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"unknown key {path[-1]!r}{hint}{listed}"
    message = str(error["msg"])
    value = error.get("input")
    if error["type"] != "missing" and isinstance(value, str | int | float | bool):
        message += f" (got {value!r})"
    return message


def _validate(data: Any, positions: Positions, file: Path) -> AgentConfig:
    if data is None:
        raise ConfigFileError(file, "the file is empty", line=1)
    if not isinstance(data, dict):
        raise ConfigFileError(file, "the top level must be a mapping of keys", line=1)
    _check_unique_names(data, positions, file)
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        errors = [_error(e, data, positions, file) for e in exc.errors()]
        errors.sort(key=lambda e: (e.line or 0, e.column or 0))
        first = errors[0]
        if len(errors) > 1:  # one exception, every problem listed: fix them in one go
            rest = "".join(f"\n{e}" for e in errors[1:])
            raise ConfigFileError(
                file, first.detail + rest, line=first.line, column=first.column, key=first.key
            ) from exc
        raise first from exc


def _error(error: Any, data: Any, positions: Positions, file: Path) -> ConfigFileError:
    path = _locate(tuple(error["loc"]), data)
    line, column = _position(path, positions)
    message = _message(error, path, data)
    return ConfigFileError(file, message, line=line, column=column, key=format_key(path))


def _check_unique_names(data: dict[str, Any], positions: Positions, file: Path) -> None:
    """Name the second camera of a pair, not just the list (the model can only do that)."""
    cameras = data.get("cameras")
    if not isinstance(cameras, list):
        return
    first: dict[Any, int] = {}
    for index, camera in enumerate(cameras):
        name = camera.get("name") if isinstance(camera, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            path: KeyPath = ("cameras", index, "name")
            line, column = _position(path, positions)
            raise ConfigFileError(
                file, f"camera name {name!r} is already used by cameras[{first[name]}]",
                line=line, column=column, key=format_key(path),
            )  # fmt: skip
        first[name] = index


# --- public ---------------------------------------------------------------------------


def _resolve(path: Path, base: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base / path


def _resolve_camera(camera: CameraConfig, base: Path) -> CameraConfig:
    update: dict[str, Any] = {}
    if isinstance(camera.source, FileSource):
        update["source"] = camera.source.model_copy(
            update={"path": _resolve(camera.source.path, base)}
        )
    if camera.detect.model_path is not None:
        update["detect"] = camera.detect.model_copy(
            update={"model_path": _resolve(camera.detect.model_path, base)}
        )
    return camera.model_copy(update=update)


def load_agent_config(path: Path) -> AgentConfig:
    """Read, validate and return an agent configuration file (.yaml, .yml or .toml).

    Relative paths in it (spool_dir, state_dir, file sources, model_path) are taken
    relative to the file's directory, so the agent behaves the same from any working
    directory.
    """
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".toml"):
        raise ConfigFileError(path, "unknown format: use a .yaml, .yml or .toml file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(path, f"cannot read the file: {exc}") from exc
    parse = _parse_toml if suffix == ".toml" else _parse_yaml
    data, positions = parse(text, path)
    config = _validate(data, positions, path)
    base = path.resolve().parent
    resolved = config.model_copy(
        update={
            "spool_dir": _resolve(config.spool_dir, base),
            "state_dir": _resolve(config.state_dir, base),
            "cameras": [_resolve_camera(c, base) for c in config.cameras],
            "mqtt": config.mqtt.resolved(base) if config.mqtt is not None else None,
        }
    )
    _check_models(resolved, positions, path)
    return resolved


def _check_models(config: AgentConfig, positions: Positions, file: Path) -> None:
    """Open each user-supplied ONNX model and run it once, so a file that is not a model,
    has the wrong input shape or outputs that do not match `labels` is reported here, at
    its line, and not at the camera's first motion (`run` loads the file first too).
    Only `kind: onnx` loads anything (onnxruntime and the model): the bundled NanoDet is
    checked by the tests, and here only its presence (a broken install), so loading a
    file stays quick."""
    checked: set[tuple[Path, tuple[str, ...]]] = set()
    for index, camera in enumerate(config.cameras):
        detect = camera.detect
        key: KeyPath = ("cameras", index, "detect", "model_path")
        if detect.kind.value == "nanodet":
            if not BUNDLED_MODEL.is_file():
                key = (*key[:-1], "kind")
                line, column = _position(key, positions)
                raise ConfigFileError(
                    file, f"the bundled NanoDet model is missing ({BUNDLED_MODEL}): reinstall "
                    "doorwarden, or choose another detector", line=line, column=column,
                    key=format_key(key),
                )  # fmt: skip
            continue
        # A model that is not there yet (a configuration written before the model was
        # copied, the documented example) is reported when the agent starts.
        if detect.kind.value != "onnx" or detect.model_path is None:
            continue
        if not detect.model_path.is_file():
            continue
        seen = (detect.model_path, tuple(detect.labels))
        if seen in checked:
            continue
        checked.add(seen)
        # Lazy: onnxruntime and numpy load only when a configuration names a model.
        from doorwarden.agent.analysis.detect import check_detector  # noqa: PLC0415
        from doorwarden.agent.analysis.detection import DetectorError  # noqa: PLC0415

        try:
            check_detector(detect)
        except DetectorError as exc:
            line, column = _position(key, positions)
            raise ConfigFileError(
                file, str(exc), line=line, column=column, key=format_key(key)
            ) from exc
