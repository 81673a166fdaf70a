"""What every detector speaks: the `Detection` it returns, the `DetectorError` it raises,
and the pieces the ONNX detectors share (a CPU session tuned for a camera box, the image
input check, letterboxing, non-maximum suppression, boxes normalised to the frame).

A module apart from detect.py so that a detector in its own module (nanodet.py) and the
factory that chooses between detectors (detect.make_detector) do not import each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

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


def nms(boxes: Sequence[Sequence[float]], scores: Sequence[float], min_score: float) -> list[int]:
    """Indices kept by non-maximum suppression (boxes are x, y, w, h in pixels)."""
    if not boxes:
        return []
    kept = cv2.dnn.NMSBoxes(
        [[float(v) for v in b] for b in boxes], [float(s) for s in scores], min_score, NMS_IOU
    )
    return [int(i) for i in np.asarray(kept).reshape(-1)]


def normalise(box: Sequence[float], width: int, height: int) -> Box:
    """Clip a pixel box (x, y, w, h) to the frame and express it in 0..1 of the frame."""
    x, y, w, h = box
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(width), x + w), min(float(height), y + h)
    return (x0 / width, y0 / height, max(0.0, x1 - x0) / width, max(0.0, y1 - y0) / height)


@dataclass(frozen=True)
class Letterbox:
    scale: float
    pad_x: float
    pad_y: float


def letterbox(rgb: RgbFrame, in_w: int, in_h: int) -> tuple[RgbFrame, Letterbox]:
    """Resize keeping the aspect ratio, centred on a grey canvas of the input size."""
    height, width = rgb.shape[:2]
    scale = min(in_w / width, in_h / height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((in_h, in_w, 3), LETTERBOX_FILL, dtype=np.uint8)
    pad_x, pad_y = (in_w - new_w) // 2, (in_h - new_h) // 2
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return canvas, Letterbox(scale, float(pad_x), float(pad_y))


def dim(value: Any) -> int | None:
    """A fixed dimension, or None for a symbolic/unknown one."""
    return value if isinstance(value, int) and value > 0 else None


def open_session(model_path: Path) -> Any:
    """An onnxruntime CPU session for `model_path`, or a DetectorError that says why not."""
    import onnxruntime as ort  # noqa: PLC0415 - only loaded when a model is configured

    if not model_path.is_file():
        raise DetectorError(f"ONNX model not found: {model_path}")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # onnxruntime's warnings would go to stderr
    # One thread, and no spinning: by default onnxruntime starts a thread per core whose
    # workers spin-wait between operators, which on a camera box doubled the CPU a call
    # costs (nanodet at 416x416 on 2 cores: 46 ms of CPU a call spinning, 21-23 ms not,
    # at the same wall time) and took cores the video decoders' frame threads use. Each
    # camera's detector runs on its camera's thread, so cameras still detect in parallel.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise DetectorError(f"{model_path} is not a loadable ONNX model: {exc}") from exc


def image_input_shape(session: Any, model_path: Path) -> list[Any]:
    """The model's one image input shape, checked to be NCHW float with 3 channels."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise DetectorError(f"{model_path}: expected one image input, found {len(inputs)}")
    shape = list(inputs[0].shape)
    if len(shape) != 4 or dim(shape[1]) not in (3, None):
        raise DetectorError(
            f"{model_path}: input shape {shape} is not NCHW with 3 channels "
            "(expected [1, 3, height, width]; export the model with an NCHW image input)"
        )
    if inputs[0].type != "tensor(float)":
        raise DetectorError(
            f"{model_path}: input type {inputs[0].type} is not float32 (tensor(float))"
        )
    return shape
