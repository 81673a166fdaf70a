"""Privacy zones: polygons blacked out before any pixel is stored, thumbnailed or sent live.

Masking happens on the decoded planes, before encoding, so nothing inside a zone can reach
a clip. The chroma planes are masked more generously than luma: in 4:2:0 one chroma sample
colours a 2x2 block of pixels and players interpolate chroma between neighbouring samples,
so a chroma sample that merely touches a masked pixel would otherwise tint the black area
with the colour of what it hides.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, TypeVar

import av
import cv2
import numpy as np
import numpy.typing as npt

NormalisedPolygon = Sequence[tuple[float, float]]
BoolArray = npt.NDArray[np.bool_]
ImageT = TypeVar("ImageT", bound=npt.NDArray[Any])

# Limited-range ("TV") black: what libx264 yuv420p output and browsers expect.
BLACK_Y = 16
NEUTRAL_C = 128
_KERNEL = np.ones((3, 3), np.uint8)


class PrivacyMask:
    """Rasterised privacy polygons; falsy (and a pass-through) when there are none."""

    def __init__(self, polygons: Sequence[NormalisedPolygon], width: int, height: int) -> None:
        self._polygons = tuple(tuple((float(x), float(y)) for x, y in p) for p in polygons)
        if self._polygons and width > 0 and height > 0:
            self._masks(width, height)  # rasterise the stream's size once, up front

    @classmethod
    def none(cls) -> PrivacyMask:
        return cls([], 0, 0)

    def __bool__(self) -> bool:
        return bool(self._polygons)

    @property
    def polygons(self) -> tuple[tuple[tuple[float, float], ...], ...]:
        return self._polygons

    def luma_mask(self, width: int, height: int) -> BoolArray:
        """True where a pixel of a width x height image is hidden."""
        return self._masks(width, height)[0]

    def apply(self, frame: av.VideoFrame) -> av.VideoFrame:
        """A yuv420p copy of `frame` with every zone black; the frame itself if no zones."""
        if not self:
            return frame
        if frame.format.name != "yuv420p":
            # Full-range (yuvj420p) and other layouts become the one layout we encode.
            frame = frame.reformat(format="yuv420p")
        luma, chroma = self._masks(frame.width, frame.height)
        out = av.VideoFrame(frame.width, frame.height, "yuv420p")
        for src, dst, mask, value in zip(
            frame.planes,
            out.planes,
            (luma, chroma, chroma),
            (BLACK_Y, NEUTRAL_C, NEUTRAL_C),
            strict=True,
        ):
            src_rows = np.frombuffer(memoryview(src), np.uint8).reshape(src.height, -1)
            # Written in place: the new frame's planes are writable numpy views.
            dst_rows = np.frombuffer(memoryview(dst), np.uint8).reshape(dst.height, -1)
            pixels = dst_rows[:, : dst.width]
            pixels[...] = src_rows[:, : src.width]
            pixels[mask] = value
        out.pts = frame.pts
        if frame.time_base is not None:
            out.time_base = frame.time_base
        return out

    def apply_rgb(self, image: ImageT) -> ImageT:
        """A copy of an H x W x C (or H x W) image, RGB, BGR or grey, with every zone black."""
        if not self:
            return image
        out = image.copy()
        out[self._masks(image.shape[1], image.shape[0])[0]] = 0
        return out

    def _masks(self, width: int, height: int) -> tuple[BoolArray, BoolArray]:
        return _rasterise(self._polygons, width, height)


@lru_cache(maxsize=8)
def _rasterise(
    polygons: tuple[tuple[tuple[float, float], ...], ...], width: int, height: int
) -> tuple[BoolArray, BoolArray]:
    luma = np.zeros((height, width), np.uint8)
    scale = np.array([width, height], np.float64)
    pts = [np.round(np.array(p, np.float64) * scale).astype(np.int32) for p in polygons]
    cv2.fillPoly(luma, pts, 1)
    # One pixel of margin: the encoder smears a hard edge a pixel into the black, and the
    # polygon itself must stay dark in the decoded clip, not just before encoding.
    luma = np.asarray(cv2.dilate(luma, _KERNEL), np.uint8)
    # A chroma sample is hidden if any of the 2x2 pixels it covers is (odd sizes round up),
    # then one more sample around it, because decoders interpolate chroma across samples.
    ch, cw = (height + 1) // 2, (width + 1) // 2
    padded = np.zeros((ch * 2, cw * 2), np.uint8)
    padded[:height, :width] = luma
    chroma = padded.reshape(ch, 2, cw, 2).max(axis=(1, 3))
    chroma = cv2.dilate(chroma, _KERNEL)
    luma_mask = luma.astype(bool)
    chroma_mask = np.asarray(chroma, np.uint8).astype(bool)
    luma_mask.flags.writeable = False
    chroma_mask.flags.writeable = False
    return luma_mask, chroma_mask
