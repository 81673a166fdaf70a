"""The bundled person detector: NanoDet, a small COCO object detector, in ONNX.

Why this model: it is the one small COCO detector we found whose weights ship inside a
registry package under a licence the project may redistribute (Apache-2.0 network and
weights, MIT conversion; analysis/models/PROVENANCE.md lists the others checked and why
each could not ship). It is inside our package, so the agent never downloads a model.

Why not a YOLO-style head like `OnnxDetector`: NanoDet's head is GFL -- per cell, class
scores and, per box side, a distribution over 11 distance bins. Decoding it needs the
softmax expectation of each distribution, so it has its own small decoder (the output
layout is in PROVENANCE.md). Only COCO class 0 (person) is reported: doorwarden alerts on
people, and reporting the other 79 classes would only add false "objects".

Cost: ~70 ms a call at 416x416 on the shared 2-core development machine, about a third
of HOG's time on a 768x576 frame (bench/bench_person_detect.py), which is why the
pipeline runs it at most a few times a second, only while there is motion, and
(`detect.detect_regions`) on a crop around the motion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from doorwarden.agent.analysis.detection import (
    Detection,
    DetectorError,
    RgbFrame,
    image_input_shape,
    letterbox,
    nms,
    normalise,
    open_session,
)

MODEL_PATH = Path(__file__).resolve().parent / "models" / "nanodet-coco-416.onnx"
# NanoDet's training normalisation, per channel in BGR order.
MEAN_BGR = np.array([103.53, 116.28, 123.675], np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], np.float32)
STRIDES = (8, 16, 32)
BINS = 11  # reg_max + 1 distance bins per box side
CLASSES = 80
PERSON = 0  # COCO class index


class NanoDetDetector:
    """People in an RGB frame, from the bundled NanoDet model (or a file of the same
    layout: `model_path` is for tests and for a user's retrained NanoDet)."""

    def __init__(self, min_confidence: float = 0.5, *, model_path: Path = MODEL_PATH) -> None:
        self.min_confidence = min_confidence
        self.model_path = model_path
        self._session = open_session(model_path)
        shape = image_input_shape(self._session, model_path)
        if not all(isinstance(v, int) for v in shape[2:]) or shape[2] != shape[3]:
            raise DetectorError(f"{model_path}: NanoDet needs a fixed square input, got {shape}")
        self.input_size: int = shape[2]
        self._input_name: str = self._session.get_inputs()[0].name
        self._levels = self._pair_outputs()

    def _pair_outputs(self) -> list[tuple[int, int, int, int]]:
        """(scores index, boxes index, cells a side, stride) for each stride, found by shape."""
        shapes = [list(o.shape) for o in self._session.get_outputs()]
        levels = []
        for stride in STRIDES:
            side = self.input_size // stride
            cells = side * side
            scores = [i for i, s in enumerate(shapes) if s == [1, cells, CLASSES]]
            boxes = [i for i, s in enumerate(shapes) if s == [1, cells, 4 * BINS]]
            if len(scores) != 1 or len(boxes) != 1:
                raise DetectorError(
                    f"{self.model_path}: not a NanoDet model: expected outputs [1, {cells}, "
                    f"{CLASSES}] and [1, {cells}, {4 * BINS}] for stride {stride}, "
                    f"got {shapes}"
                )
            levels.append((scores[0], boxes[0], side, stride))
        return levels

    def _tensor(self, canvas: RgbFrame) -> npt.NDArray[np.float32]:
        bgr = canvas[:, :, ::-1].astype(np.float32)
        norm = (bgr - MEAN_BGR) / STD_BGR
        return np.ascontiguousarray(norm.transpose(2, 0, 1)[np.newaxis], dtype=np.float32)

    def detect(self, rgb: RgbFrame) -> list[Detection]:
        height, width = rgb.shape[:2]
        canvas, lb = letterbox(rgb, self.input_size, self.input_size)
        outputs = self._session.run(None, {self._input_name: self._tensor(canvas)})
        boxes: list[list[float]] = []
        scores: list[float] = []
        for score_i, box_i, side, stride in self._levels:
            person = np.asarray(outputs[score_i])[0, :, PERSON]
            keep = np.flatnonzero(person >= self.min_confidence)
            if keep.size == 0:
                continue
            dist = _distances(np.asarray(outputs[box_i])[0, keep], stride)
            cx = (keep % side + 0.5) * stride
            cy = (keep // side + 0.5) * stride
            # Input pixels -> frame pixels (undo the letterbox).
            x0 = (cx - dist[:, 0] - lb.pad_x) / lb.scale
            y0 = (cy - dist[:, 1] - lb.pad_y) / lb.scale
            x1 = (cx + dist[:, 2] - lb.pad_x) / lb.scale
            y1 = (cy + dist[:, 3] - lb.pad_y) / lb.scale
            boxes += [[float(a), float(b), float(c - a), float(d - b)] for a, b, c, d in zip(
                x0, y0, x1, y1, strict=True)]  # fmt: skip
            scores += [float(v) for v in person[keep]]
        found = [
            Detection("person", scores[i], normalise(boxes[i], width, height))
            for i in nms(boxes, scores, self.min_confidence)
        ]
        found.sort(key=lambda d: d.confidence, reverse=True)
        return found


def _distances(reg: npt.NDArray[Any], stride: int) -> npt.NDArray[np.float64]:
    """GFL box sides: per row, (left, top, right, bottom) distances in input pixels."""
    logits = reg.reshape(-1, 4, BINS).astype(np.float64)
    logits -= logits.max(axis=2, keepdims=True)
    weights = np.exp(logits)
    weights /= weights.sum(axis=2, keepdims=True)
    expected: npt.NDArray[np.float64] = (weights * np.arange(BINS)).sum(axis=2) * stride
    return expected
