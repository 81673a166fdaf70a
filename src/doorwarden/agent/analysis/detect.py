"""Smart detection: which objects (people, by default) are in a frame.

Detection is expensive next to motion, so the pipeline runs it only while there is
motion and at a low rate, on an RGB copy of a frame. Boxes are normalised (x, y, w, h
in 0..1 of the frame) so they mean the same thing whatever resolution was analysed.

Two detectors ship: OpenCV's HOG people detector (no model file needed; pinned to
opencv < 5, which dropped it) and a generic ONNX detector for YOLO-style models.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from doorwarden.agent.config.models import DetectConfig, DetectorKind

Box = tuple[float, float, float, float]
RgbFrame = npt.NDArray[np.uint8]

# Boxes of the same label overlapping more than this are one object.
NMS_IOU = 0.45
# Dynamic-shape models get this input size (the size YOLO models are exported at).
DEFAULT_INPUT_SIZE = 640
# YOLO's letterbox padding grey; a model trained on it sees the bars as "nothing".
LETTERBOX_FILL = 114


class DetectorError(Exception):
    """A detector cannot be built or cannot understand its model."""


@dataclass(frozen=True)
class Detection:
    label: str
    confidence: float
    box: Box  # x, y, w, h, normalised to 0..1 of the frame


class Detector(Protocol):
    def detect(self, rgb: RgbFrame) -> list[Detection]: ...


def _nms(boxes: Sequence[Sequence[float]], scores: Sequence[float], min_score: float) -> list[int]:
    """Indices kept by non-maximum suppression (boxes are x, y, w, h in pixels)."""
    if not boxes:
        return []
    kept = cv2.dnn.NMSBoxes(
        [[float(v) for v in b] for b in boxes], [float(s) for s in scores], min_score, NMS_IOU
    )
    return [int(i) for i in np.asarray(kept).reshape(-1)]


def _normalise(box: Sequence[float], width: int, height: int) -> Box:
    """Clip a pixel box (x, y, w, h) to the frame and express it in 0..1 of the frame."""
    x, y, w, h = box
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(width), x + w), min(float(height), y + h)
    return (x0 / width, y0 / height, max(0.0, x1 - x0) / width, max(0.0, y1 - y0) / height)


class HogPersonDetector:
    """OpenCV's HOG + linear SVM pedestrian detector (Dalal & Triggs).

    Its window is 64x128 px, so a person must be at least ~128 px tall in the analysed
    image; frames wider than `max_width` are scaled down for speed (HOG cost grows with
    the pixel count), which is why `max_width` should not be set much lower.

    Confidence: the SVM returns a margin `w` (distance past the decision hyperplane,
    typically 0..4). We map it with `1 - exp(-w)`: monotonic, 0 at the hyperplane,
    0.5 at w = ln 2 (about 0.69), 0.86 at w = 2. On vtest.avi real pedestrians score
    0.6..0.98 and the rare false positives 0.2..0.5, so the default 0.5 threshold
    separates them reasonably.
    """

    def __init__(self, min_confidence: float = 0.5, *, max_width: int = 800) -> None:
        self.min_confidence = min_confidence
        self.max_width = max_width
        self._hog = cv2.HOGDescriptor()
        # Missing from OpenCV's type stubs, present in every 4.x build.
        people = cv2.HOGDescriptor_getDefaultPeopleDetector()  # type: ignore[attr-defined]
        self._hog.setSVMDetector(people)

    @staticmethod
    def confidence(margin: float) -> float:
        return 0.0 if margin <= 0 else 1.0 - math.exp(-margin)

    def detect(self, rgb: RgbFrame) -> list[Detection]:
        height, width = rgb.shape[:2]
        factor = min(1.0, self.max_width / width)
        image: npt.NDArray[Any] = rgb
        if factor < 1.0:
            size = (round(width * factor), round(height * factor))
            image = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        if image.shape[0] < 128 or image.shape[1] < 64:
            return []  # smaller than the detection window: nothing can match
        # winStride 8 and scale 1.05 are OpenCV's sample settings: halving the stride
        # costs 4x for little recall, a coarser scale step misses sizes between steps.
        rects, weights = self._hog.detectMultiScale(
            image, winStride=(8, 8), padding=(8, 8), scale=1.05
        )
        if len(rects) == 0:
            return []
        scores = [self.confidence(float(w)) for w in np.asarray(weights).reshape(-1)]
        boxes = [[float(v) / factor for v in r] for r in rects]
        return [
            Detection("person", scores[i], _normalise(boxes[i], width, height))
            for i in _nms(boxes, scores, self.min_confidence)
        ]


@dataclass(frozen=True)
class _Letterbox:
    scale: float
    pad_x: float
    pad_y: float


def _letterbox(rgb: RgbFrame, in_w: int, in_h: int) -> tuple[RgbFrame, _Letterbox]:
    """Resize keeping the aspect ratio, centred on a grey canvas of the input size."""
    height, width = rgb.shape[:2]
    scale = min(in_w / width, in_h / height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((in_h, in_w, 3), LETTERBOX_FILL, dtype=np.uint8)
    pad_x, pad_y = (in_w - new_w) // 2, (in_h - new_h) // 2
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return canvas, _Letterbox(scale, float(pad_x), float(pad_y))


def _dim(value: Any) -> int | None:
    """A fixed dimension, or None for a symbolic/unknown one."""
    return value if isinstance(value, int) and value > 0 else None


class OnnxDetector:
    """Any ONNX detector with a YOLO-style head (YOLOv8/v9/v10-export, YOLOX-like).

    Input: one NCHW float32 image, RGB, 0..1. Output: `[1, N, 4 + C]` or
    `[1, 4 + C, N]` — per candidate cx, cy, w, h in input pixels then C class scores,
    where C is `len(labels)`. When both dimensions equal 4 + C the layout is ambiguous
    and we take `[1, 4 + C, N]`, the Ultralytics export's layout.
    """

    def __init__(
        self, model_path: Path, labels: Sequence[str], min_confidence: float = 0.5
    ) -> None:
        import onnxruntime as ort  # noqa: PLC0415 - only loaded when a model is configured

        if not labels:
            raise DetectorError("an ONNX detector needs at least one label")
        if not model_path.is_file():
            raise DetectorError(f"ONNX model not found: {model_path}")
        self.model_path = model_path
        self.labels = list(labels)
        self.min_confidence = min_confidence
        options = ort.SessionOptions()
        options.log_severity_level = 3  # onnxruntime's warnings would go to stderr
        try:
            self._session = ort.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise DetectorError(f"{model_path} is not a loadable ONNX model: {exc}") from exc
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise DetectorError(f"{model_path}: expected one image input, found {len(inputs)}")
        shape = list(inputs[0].shape)
        if len(shape) != 4 or _dim(shape[1]) not in (3, None):
            raise DetectorError(f"{model_path}: input shape {shape} is not NCHW with 3 channels")
        self._input_name: str = inputs[0].name
        self.input_height = _dim(shape[2]) or DEFAULT_INPUT_SIZE
        self.input_width = _dim(shape[3]) or DEFAULT_INPUT_SIZE

    def _rows(self, output: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        """The output as [N, 4 + C] whichever of the two layouts the model uses."""
        attrs = 4 + len(self.labels)
        squeezed = output[0] if output.ndim == 3 and output.shape[0] == 1 else None
        if squeezed is not None and squeezed.shape[0] == attrs:
            return np.ascontiguousarray(squeezed.T, dtype=np.float32)
        if squeezed is not None and squeezed.shape[1] == attrs:
            return np.asarray(squeezed, dtype=np.float32)
        raise DetectorError(
            f"{self.model_path}: cannot decode output of shape {list(output.shape)}; "
            f"expected [1, N, {attrs}] or [1, {attrs}, N] "
            f"(4 box values + {len(self.labels)} labels)"
        )

    def detect(self, rgb: RgbFrame) -> list[Detection]:
        height, width = rgb.shape[:2]
        canvas, lb = _letterbox(rgb, self.input_width, self.input_height)
        tensor = (canvas.astype(np.float32) / 255.0).transpose(2, 0, 1)[np.newaxis]
        output = self._session.run(None, {self._input_name: np.ascontiguousarray(tensor)})[0]
        rows = self._rows(np.asarray(output))
        scores = rows[:, 4:]
        classes = scores.argmax(axis=1)
        best = scores[np.arange(len(rows)), classes]
        keep = best >= self.min_confidence
        rows, classes, best = rows[keep], classes[keep], best[keep]
        # Undo the letterbox: input pixels -> frame pixels.
        x = (rows[:, 0] - rows[:, 2] / 2 - lb.pad_x) / lb.scale
        y = (rows[:, 1] - rows[:, 3] / 2 - lb.pad_y) / lb.scale
        w, h = rows[:, 2] / lb.scale, rows[:, 3] / lb.scale
        found: list[Detection] = []
        # Per class, so a person is not suppressed by the bicycle they ride.
        for cls in np.unique(classes):
            idx = np.flatnonzero(classes == cls)
            boxes = [[float(x[i]), float(y[i]), float(w[i]), float(h[i])] for i in idx]
            cls_scores = [float(best[i]) for i in idx]
            for k in _nms(boxes, cls_scores, self.min_confidence):
                found.append(
                    Detection(
                        self.labels[int(cls)], cls_scores[k], _normalise(boxes[k], width, height)
                    )
                )
        found.sort(key=lambda d: d.confidence, reverse=True)
        return found


def make_detector(cfg: DetectConfig) -> Detector | None:
    """The detector a camera's configuration asks for; None when detection is off."""
    if cfg.kind is DetectorKind.none:
        return None
    if cfg.kind is DetectorKind.hog:
        return HogPersonDetector(cfg.min_confidence)
    if cfg.model_path is None:  # the config model already refuses this; keeps mypy honest
        raise DetectorError("model_path is required for an ONNX detector")
    return OnnxDetector(cfg.model_path, cfg.labels, cfg.min_confidence)
