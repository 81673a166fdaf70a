"""Smart detection: the bundled NanoDet and HOG on real footage, ONNX decoding on models
the tests build, detection on motion regions, and bad models refused by check-config."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from doorwarden.agent.analysis.detect import (
    REGION_MIN_SIDE,
    HogPersonDetector,
    OnnxDetector,
    check_detector,
    detect_regions,
    make_detector,
    region_for,
)
from doorwarden.agent.analysis.detection import Detection, DetectorError
from doorwarden.agent.analysis.nanodet import MODEL_PATH, NanoDetDetector
from doorwarden.agent.config.file import BUNDLED_MODEL
from doorwarden.agent.config.models import DetectConfig
from doorwarden.cli.agent import agent_app
from tests.paths import VTEST


def _vtest_frame(index: int) -> np.ndarray:
    if not VTEST.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{VTEST} is missing; CI must provide the test footage")
        pytest.skip(f"{VTEST} is missing (OpenCV sample data, Debian package opencv-doc)")
    capture = cv2.VideoCapture(str(VTEST))
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, bgr = capture.read()
    finally:
        capture.release()
    assert ok, f"cannot read frame {index} of {VTEST}"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_hog_finds_pedestrians_on_real_footage() -> None:
    frame = _vtest_frame(60)  # three pedestrians walking, clearly visible
    found = HogPersonDetector(0.5).detect(frame)
    assert len(found) >= 2
    for d in found:
        assert d.label == "person"
        assert 0.5 <= d.confidence <= 1.0
        x, y, w, h = d.box
        assert 0 <= x <= 1 and 0 <= y <= 1 and 0 < w <= 1 and 0 < h <= 1
        assert 1.5 < (h * frame.shape[0]) / (w * frame.shape[1]) < 4  # upright figures


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((480, 640, 3), np.uint8),
        np.tile(np.linspace(0, 255, 1280, dtype=np.uint8)[None, :, None], (720, 1, 3)),
        np.zeros((100, 50, 3), np.uint8),  # smaller than HOG's window
    ],
    ids=["blank", "gradient", "tiny"],
)
def test_hog_finds_nobody_in_empty_images(image: np.ndarray) -> None:
    assert HogPersonDetector(0.3).detect(image) == []


def test_hog_confidence_mapping_is_monotonic_and_bounded() -> None:
    values = [HogPersonDetector.confidence(w) for w in (-1.0, 0.0, 0.5, np.log(2), 2.0, 10.0)]
    assert values[0] == values[1] == 0.0
    assert values == sorted(values)
    assert values[3] == pytest.approx(0.5)
    assert values[-1] < 1.0 + 1e-9


# --- ONNX -----------------------------------------------------------------------------

LABELS = ["person", "car"]
# Candidates in input pixels (640x640): cx, cy, w, h, score(person), score(car).
CANDIDATES = np.array(
    [
        [320, 320, 100, 200, 0.90, 0.05],  # a person
        [324, 322, 100, 200, 0.80, 0.05],  # the same person again: NMS removes it
        [330, 330, 120, 80, 0.10, 0.70],  # a car overlapping the person: another class, kept
        [100, 200, 40, 40, 0.30, 0.20],  # below the threshold
    ],
    dtype=np.float32,
)


def _model(
    path: Path, output: np.ndarray, *, input_hw: tuple[int | str, int | str] = (640, 640)
) -> Path:
    """A model whose output is `output` + 0 * mean(input): the candidates are known, and
    the input still flows through the graph, so the input shape is really exercised."""
    const = numpy_helper.from_array(output.astype(np.float32), name="candidates")
    zero = numpy_helper.from_array(np.array(0.0, dtype=np.float32), name="zero")
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["candidates", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "fake_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, *input_hw])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))],
        initializer=[const, zero],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what every onnxruntime since 1.10 reads
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _by_label(found: list[Detection]) -> dict[str, list[Detection]]:
    out: dict[str, list[Detection]] = {}
    for d in found:
        out.setdefault(d.label, []).append(d)
    return out


@pytest.mark.parametrize("layout", ["rows", "columns"])
def test_onnx_decodes_both_layouts_and_undoes_the_letterbox(tmp_path: Path, layout: str) -> None:
    output = CANDIDATES[np.newaxis] if layout == "rows" else CANDIDATES.T[np.newaxis]
    detector = OnnxDetector(_model(tmp_path / "m.onnx", output), LABELS, 0.5)
    # 1280x640: scaled by 0.5 to 640x320, centred with 160 px bars above and below.
    frame = np.zeros((640, 1280, 3), np.uint8)
    found = _by_label(detector.detect(frame))

    assert sorted(found) == ["car", "person"]
    (person,) = found["person"]
    assert person.confidence == pytest.approx(0.90)
    # Input box x 270..370, y 220..420 -> frame x 540..740, y (220-160)*2=120..520.
    assert person.box == pytest.approx((540 / 1280, 120 / 640, 200 / 1280, 400 / 640))
    (car,) = found["car"]
    assert car.confidence == pytest.approx(0.70)
    # Input box x 270..390, y 290..370 -> frame x 540..780, y 260..420.
    assert car.box == pytest.approx((540 / 1280, 260 / 640, 240 / 1280, 160 / 640))


def test_onnx_dynamic_input_uses_default_size(tmp_path: Path) -> None:
    path = _model(tmp_path / "d.onnx", CANDIDATES.T[np.newaxis], input_hw=("height", "width"))
    detector = OnnxDetector(path, LABELS, 0.5)
    assert (detector.input_width, detector.input_height) == (640, 640)
    found = detector.detect(np.zeros((480, 640, 3), np.uint8))  # 640x480 -> pad 80 top
    person = next(d for d in found if d.label == "person")
    assert person.box == pytest.approx((270 / 640, 140 / 480, 100 / 640, 200 / 480))


def test_onnx_fixed_non_square_input(tmp_path: Path) -> None:
    rows = np.array([[160, 120, 32, 64, 0.95, 0.0]], dtype=np.float32)
    detector = OnnxDetector(_model(tmp_path / "f.onnx", rows[None], input_hw=(240, 320)), LABELS)
    assert (detector.input_width, detector.input_height) == (320, 240)
    (person,) = detector.detect(np.zeros((480, 640, 3), np.uint8))  # exact 2x, no bars
    assert person.box == pytest.approx((288 / 640, 176 / 480, 64 / 640, 128 / 480))


def test_onnx_threshold_drops_everything(tmp_path: Path) -> None:
    detector = OnnxDetector(_model(tmp_path / "m.onnx", CANDIDATES[None]), LABELS, 0.95)
    assert detector.detect(np.zeros((64, 64, 3), np.uint8)) == []


def test_onnx_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DetectorError, match="not found"):
        OnnxDetector(tmp_path / "absent.onnx", LABELS)


def test_onnx_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"this is not a protobuf \x00\x01\x02" * 10)
    with pytest.raises(DetectorError, match="not a loadable ONNX model"):
        OnnxDetector(path, LABELS)


def test_onnx_undecodable_output_names_the_shape(tmp_path: Path) -> None:
    output = np.zeros((1, 3, 7), np.float32)  # 7 attributes, but 2 labels need 6
    detector = OnnxDetector(_model(tmp_path / "bad.onnx", output), LABELS)
    with pytest.raises(DetectorError, match=r"\[1, 3, 7\]"):
        detector.detect(np.zeros((64, 64, 3), np.uint8))


def test_make_detector(tmp_path: Path) -> None:
    assert make_detector(DetectConfig(kind="none")) is None
    assert isinstance(make_detector(DetectConfig()), NanoDetDetector)  # the default
    assert isinstance(make_detector(DetectConfig(kind="hog")), HogPersonDetector)
    path = _model(tmp_path / "m.onnx", CANDIDATES[None])
    onnx_detector = make_detector(DetectConfig(kind="onnx", model_path=path, labels=LABELS))
    assert isinstance(onnx_detector, OnnxDetector)
    assert onnx_detector.labels == LABELS


# --- the bundled NanoDet ---------------------------------------------------------------


@pytest.fixture(scope="module")
def nanodet() -> NanoDetDetector:
    return NanoDetDetector(0.5)


def _upright_people(found: list[Detection], frame: np.ndarray) -> None:
    for d in found:
        assert d.label == "person"
        assert 0.5 <= d.confidence <= 1.0
        x, y, w, h = d.box
        assert 0 <= x <= 1 and 0 <= y <= 1 and 0 < w <= 1 and 0 < h <= 1
        assert 1.5 < (h * frame.shape[0]) / (w * frame.shape[1]) < 5  # upright figures


def test_nanodet_finds_the_pedestrians_on_real_footage(nanodet: NanoDetDetector) -> None:
    frame = _vtest_frame(60)  # five pedestrians; HOG finds two or three of them
    found = nanodet.detect(frame)
    assert len(found) >= 4
    _upright_people(found, frame)
    # The man on the right (checked by eye): x 613..651, y 233..339 in source pixels.
    right = max(found, key=lambda d: d.box[0])
    assert right.box == pytest.approx((613 / 768, 233 / 576, 38 / 768, 106 / 576), abs=0.02)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((480, 640, 3), np.uint8),
        np.full((360, 640, 3), 200, np.uint8),
        np.tile(np.linspace(0, 255, 1280, dtype=np.uint8)[None, :, None], (720, 1, 3)),
        np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8),
    ],
    ids=["black", "grey", "gradient", "noise"],
)
def test_nanodet_finds_nobody_in_empty_images(nanodet: NanoDetDetector, image: np.ndarray) -> None:
    assert nanodet.detect(image) == []


def test_nanodet_threshold_is_applied(nanodet: NanoDetDetector) -> None:
    frame = _vtest_frame(60)
    strict = NanoDetDetector(0.8, model_path=MODEL_PATH).detect(frame)
    assert all(d.confidence >= 0.8 for d in strict)
    assert len(strict) < len(nanodet.detect(frame))


def test_bundled_model_is_the_one_provenance_describes() -> None:
    """The file shipped is the file PROVENANCE.md hashes, next to its licence, and the
    config loader's path (kept without importing onnxruntime) is the detector's."""
    assert BUNDLED_MODEL == MODEL_PATH
    provenance = (MODEL_PATH.parent / "PROVENANCE.md").read_text()
    match = re.search(r"sha256 of nanodet-coco-416.onnx \| `([0-9a-f]{64})`", provenance)
    assert match is not None
    assert hashlib.sha256(MODEL_PATH.read_bytes()).hexdigest() == match.group(1)
    licence = (MODEL_PATH.parent / "LICENCE").read_text()
    assert "Apache License" in licence and "MIT License" in licence


def test_nanodet_refuses_a_model_of_another_layout(tmp_path: Path) -> None:
    path = _model(tmp_path / "yolo.onnx", CANDIDATES[None], input_hw=(416, 416))
    with pytest.raises(DetectorError, match="not a NanoDet model"):
        NanoDetDetector(model_path=path)


# --- motion regions --------------------------------------------------------------------


def test_region_for_grows_the_union_and_keeps_a_minimum_size() -> None:
    assert region_for([], 1920, 1080) is None
    # Two boxes: union x 100..300, y 400..500 (longer side 200), grown by 100 on each
    # side: x 0..400, y 300..600.
    assert region_for([(100, 400, 50, 100), (250, 420, 50, 60)], 1920, 1080) == (
        0, 300, 400, 300,
    )  # fmt: skip
    x, y, w, h = region_for([(960, 540, 4, 4)], 1920, 1080) or (0, 0, 0, 0)
    assert w == h == REGION_MIN_SIDE and x < 960 < x + w and y < 540 < y + h
    # Motion over most of the frame: detect on the whole frame.
    assert region_for([(0, 0, 600, 400)], 640, 480) is None


def test_detect_regions_maps_boxes_back_to_the_frame(nanodet: NanoDetDetector) -> None:
    frame = _vtest_frame(60)
    whole = nanodet.detect(frame)
    right = max(whole, key=lambda d: d.box[0])
    # Motion on the right man's legs only: the crop around it still holds the whole man.
    found = detect_regions(nanodet, frame, [(615, 290, 35, 45)])
    assert found, "the man is inside the crop"
    best = max(found, key=lambda d: d.confidence)
    assert best.box == pytest.approx(right.box, abs=0.015)
    # No motion boxes: the same as the whole frame.
    assert detect_regions(nanodet, frame, []) == whole


def test_detect_regions_works_for_hog_too() -> None:
    frame = _vtest_frame(60)
    hog = HogPersonDetector(0.5)
    whole = hog.detect(frame)
    crop = detect_regions(hog, frame, [(440, 190, 120, 110)])  # the pair in the middle
    assert crop
    for d in crop:
        x, _, w, _ = d.box
        assert x >= 380 / 768 and x + w <= 620 / 768  # inside the crop, in frame units
        # ... and where the whole-frame pass puts the same person.
        assert any(d.box == pytest.approx(o.box, abs=0.01) for o in whole)


# --- bad models at check-config --------------------------------------------------------


def _nhwc_model(path: Path) -> Path:
    """A model whose image input is NHWC ([1, 640, 640, 3]): the usual TF export mistake."""
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["images"], ["output0"], keepdims=0)],
        "nhwc",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 640, 640, 3])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _config_with_model(tmp_path: Path, model: Path, labels: str = "[person, car]") -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "cameras:\n"
        "  - name: door\n"
        "    source: {kind: rtsp, url: rtsp://cam.local/stream}\n"
        "    detect:\n"
        "      kind: onnx\n"
        f"      model_path: {model.name}\n"
        f"      labels: {labels}\n"
    )
    return path


def _bad(tmp_path: Path, name: str) -> Path:
    if name == "not-a-model":
        path = tmp_path / "m.onnx"
        path.write_text("<html>404 Not Found</html>\n")
        return path
    if name == "nhwc":
        return _nhwc_model(tmp_path / "m.onnx")
    return _model(tmp_path / "m.onnx", np.zeros((1, 3, 7), np.float32))  # 7 != 4 + 2


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("not-a-model", "is not a loadable ONNX model"),
        ("nhwc", r"input shape \[1, 640, 640, 3\] is not NCHW with 3 channels"),
        ("labels", r"cannot decode output of shape \[1, 3, 7\]; expected \[1, N, 6\]"),
    ],
)
def test_check_config_reports_a_bad_model_at_its_line(
    tmp_path: Path, bad: str, message: str
) -> None:
    config = _config_with_model(tmp_path, _bad(tmp_path, bad))
    result = CliRunner().invoke(agent_app, ["check-config", str(config)])
    assert result.exit_code == 2, result.output
    assert f"{config}:6:7: cameras[0].detect.model_path: " in result.output
    assert re.search(message, result.output), result.output
    assert "Traceback" not in result.output


def test_check_config_accepts_a_good_model(tmp_path: Path) -> None:
    _model(tmp_path / "m.onnx", CANDIDATES[None])
    config = _config_with_model(tmp_path, tmp_path / "m.onnx")
    result = CliRunner().invoke(agent_app, ["check-config", str(config)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


def test_check_config_leaves_a_model_not_there_yet_to_the_start(tmp_path: Path) -> None:
    """A configuration written before its model was copied is valid; the agent reports
    the missing file when it starts (make_detector's "not found")."""
    config = _config_with_model(tmp_path, tmp_path / "later.onnx")
    result = CliRunner().invoke(agent_app, ["check-config", str(config)])
    assert result.exit_code == 0, result.output
    with pytest.raises(DetectorError, match="not found"):
        make_detector(DetectConfig(kind="onnx", model_path=tmp_path / "later.onnx"))


def test_check_detector_passes_the_defaults() -> None:
    check_detector(DetectConfig())  # the bundled NanoDet loads and runs
    check_detector(DetectConfig(kind="hog"))
    check_detector(DetectConfig(kind="none"))
