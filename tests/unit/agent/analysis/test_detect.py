"""Smart detection: HOG on real footage, ONNX decoding on models the tests build."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from doorwarden.agent.analysis.detect import (
    Detection,
    DetectorError,
    HogPersonDetector,
    OnnxDetector,
    make_detector,
)
from doorwarden.agent.config.models import DetectConfig
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
    assert isinstance(make_detector(DetectConfig()), HogPersonDetector)
    path = _model(tmp_path / "m.onnx", CANDIDATES[None])
    onnx_detector = make_detector(DetectConfig(kind="onnx", model_path=path, labels=LABELS))
    assert isinstance(onnx_detector, OnnxDetector)
    assert onnx_detector.labels == LABELS
