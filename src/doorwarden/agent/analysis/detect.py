"""Smart detection: which objects (people, by default) are in a frame.

Detection is expensive next to motion, so the pipeline runs it only while there is
motion and at a low rate, on an RGB copy of a frame -- and, with `detect_regions`, only
on the part of the frame around the motion, which both saves time and lets a small
far-away person fill more of the model's input. Boxes are normalised (x, y, w, h in 0..1
of the frame) so they mean the same thing whatever resolution was analysed.

Three detectors ship:
* NanoDet (analysis/nanodet.py, the default): a small COCO detector whose ONNX file is
  inside the package (analysis/models/, Apache-2.0, see PROVENANCE.md there), so nothing
  is downloaded at run time. Finds far more of the people than HOG on the same clips
  (bench/bench_person_detect.py).
* OpenCV's HOG people detector (no model file; pinned to opencv < 5, which dropped it):
  kept as the known baseline; on a whole frame it is ~2x slower than NanoDet and it
  needs people >= 128 px tall and upright.
* a generic ONNX detector for YOLO-style models the user supplies.

`check_detector` builds a configured detector and runs it once on a blank frame, so a
model with the wrong input shape, a file that is not a model or outputs that do not
match the labels fail `doorwarden agent check-config` with a clear message instead of
failing at the first motion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from doorwarden.agent.analysis.detection import (
    DEFAULT_INPUT_SIZE,
    Detection,
    Detector,
    DetectorError,
    RgbFrame,
    dim,
    image_input_shape,
    letterbox,
    nms,
    normalise,
    open_session,
)
from doorwarden.agent.config.models import DetectConfig, DetectorKind


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
            Detection("person", scores[i], normalise(boxes[i], width, height))
            for i in nms(boxes, scores, self.min_confidence)
        ]


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
        if not labels:
            raise DetectorError("an ONNX detector needs at least one label")
        self.model_path = model_path
        self.labels = list(labels)
        self.min_confidence = min_confidence
        self._session = open_session(model_path)
        inputs = self._session.get_inputs()
        shape = image_input_shape(self._session, model_path)
        self._input_name: str = inputs[0].name
        self.input_height = dim(shape[2]) or DEFAULT_INPUT_SIZE
        self.input_width = dim(shape[3]) or DEFAULT_INPUT_SIZE

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
        canvas, lb = letterbox(rgb, self.input_width, self.input_height)
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
            for k in nms(boxes, cls_scores, self.min_confidence):
                found.append(
                    Detection(
                        self.labels[int(cls)], cls_scores[k], normalise(boxes[k], width, height)
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
    if cfg.kind is DetectorKind.nanodet:
        from doorwarden.agent.analysis.nanodet import NanoDetDetector  # noqa: PLC0415

        return NanoDetDetector(cfg.min_confidence)
    if cfg.model_path is None:  # the config model already refuses this; keeps mypy honest
        raise DetectorError("model_path is required for an ONNX detector")
    return OnnxDetector(cfg.model_path, cfg.labels, cfg.min_confidence)


def check_detector(cfg: DetectConfig) -> None:
    """Build the configured detector and run it once on a blank frame: a wrong input
    shape, a file that is not a model or outputs that do not match `labels` raise a
    DetectorError naming the file and the problem (what `check-config` prints)."""
    detector = make_detector(cfg)
    if detector is None:
        return
    try:
        detector.detect(np.zeros((240, 320, 3), np.uint8))
    except DetectorError:
        raise
    except Exception as exc:  # onnxruntime's own errors: shapes or types it cannot run
        where = cfg.model_path or cfg.kind.value
        raise DetectorError(f"{where}: the model cannot run on an image: {exc}") from exc


# --- motion regions ---------------------------------------------------------------------

# Grow the union of motion boxes by this fraction of its longer side on each side: motion
# boxes often cover only the moving part of a person (legs, an arm).
REGION_MARGIN = 0.5
# A crop is at least this many pixels on each side (clipped to the frame): HOG needs
# 64x128 px and a model needs some context around a person.
REGION_MIN_SIDE = 192
# A crop covering more of the frame than this gains nothing: detect on the whole frame.
REGION_WHOLE_FRAME = 0.6


def region_for(
    boxes: Sequence[tuple[int, int, int, int]], width: int, height: int
) -> tuple[int, int, int, int] | None:
    """The crop (x, y, w, h in pixels) to detect on for these motion boxes (pixels of the
    same frame): their union, grown by REGION_MARGIN, at least REGION_MIN_SIDE a side.
    None means "the whole frame" (no boxes, or the crop would be most of the frame)."""
    if not boxes:
        return None
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    grow = REGION_MARGIN * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_w = max((x1 - x0) / 2 + grow, REGION_MIN_SIDE / 2)
    half_h = max((y1 - y0) / 2 + grow, REGION_MIN_SIDE / 2)
    left, right = max(0, round(cx - half_w)), min(width, round(cx + half_w))
    top, bottom = max(0, round(cy - half_h)), min(height, round(cy + half_h))
    if right <= left or bottom <= top:
        return None
    if (right - left) * (bottom - top) > REGION_WHOLE_FRAME * width * height:
        return None
    return left, top, right - left, bottom - top


def detect_regions(
    detector: Detector, rgb: RgbFrame, boxes: Sequence[tuple[int, int, int, int]]
) -> list[Detection]:
    """Run `detector` only around the motion `boxes` (pixels of `rgb`), with boxes in
    0..1 of the whole frame as `detect` gives them. No boxes: the whole frame."""
    height, width = rgb.shape[:2]
    crop = region_for(boxes, width, height)
    if crop is None:
        return detector.detect(rgb)
    x, y, w, h = crop
    found = detector.detect(np.ascontiguousarray(rgb[y : y + h, x : x + w]))
    return [
        Detection(
            d.label,
            d.confidence,
            (
                (x + d.box[0] * w) / width,
                (y + d.box[1] * h) / height,
                d.box[2] * w / width,
                d.box[3] * h / height,
            ),
        )
        for d in found
    ]
