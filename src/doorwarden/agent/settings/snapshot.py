"""A still of a camera for the settings page: its newest decoded frame, privacy zones
black, as JPEG. Made on request only, in memory; never written anywhere."""

from __future__ import annotations

import av
import cv2
import numpy as np

from doorwarden.agent.analysis.privacy import PrivacyMask

MAX_JPEG_BYTES = 2 * 1024 * 1024
QUALITIES = (85, 70, 50)


class SnapshotError(Exception):
    """No picture can be had; the message goes back to the server."""


def snapshot_jpeg(
    frame: av.VideoFrame, mask: PrivacyMask, *, max_bytes: int = MAX_JPEG_BYTES
) -> bytes:
    """`frame` masked at full size (so no zone edge blurs open when scaled), then encoded
    at falling quality and, if still too large, halved in size until it fits."""
    image = np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)
    image = mask.apply_rgb(image)
    while True:
        for quality in QUALITIES:
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise SnapshotError("the frame could not be encoded")
            if len(buf) <= max_bytes:
                return bytes(buf)
        h, w = image.shape[:2]
        if w < 32 or h < 32:
            raise SnapshotError(f"no JPEG of this frame fits in {max_bytes} bytes")
        image = np.asarray(cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA))
