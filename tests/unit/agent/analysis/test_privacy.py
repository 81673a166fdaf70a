"""Privacy zones: the masked pixels are gone from every stored frame and thumbnail."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from doorwarden.agent.analysis.privacy import PrivacyMask
from doorwarden.agent.config.models import RecordConfig
from doorwarden.agent.recording.recorder import EventRecorder, FinishedClip
from doorwarden.agent.recording.spool import Spool
from tests.unit.agent.samples import SQUARE_RGB, decode_clip, draw, make_video, read_samples

W, H = 320, 240
# A zone across the square's path (x 100..220 of 320, y 90..160 of 240), with a slanted
# edge so the chroma mask has to handle a boundary that is not on a 2-pixel grid.
ZONE = [(101 / W, 91 / H), (221 / W, 91 / H), (221 / W, 161 / H), (131 / W, 161 / H)]
DARK = 20


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("privacy") / "src.mp4", seconds=6)


def _record(video: Path, spool: Spool, mask: PrivacyMask) -> FinishedClip:
    record = RecordConfig(pre_roll_s=1, post_roll_s=1, min_clip_s=0, max_clip_s=60, cooldown_s=0)
    with read_samples(video) as src:
        recorder = EventRecorder("door", src.info, record, mask, spool)
        for s in src.samples:
            # Peak score mid-clip, when the square is inside the zone: the thumbnail frame.
            recorder.push(s, motion=s.time >= 1.0, score=1.0 if abs(s.time - 2.5) < 0.05 else 0.1)
        clip = recorder.flush()
    assert clip is not None
    return clip


def _polygon() -> np.ndarray:
    """The zone's own pixels, rasterised here independently of the code under test."""
    raster = np.zeros((H, W), np.uint8)
    cv2.fillPoly(raster, [np.round(np.array(ZONE) * [W, H]).astype(np.int32)], 1)
    return raster.astype(bool)


def _in_square(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return (abs(r - SQUARE_RGB[0]) < 40) & (abs(g - SQUARE_RGB[1]) < 40) & (b > 150)


def test_mask_none_is_falsy_and_passes_frames_through() -> None:
    mask = PrivacyMask.none()
    assert not mask
    frame = av.VideoFrame.from_ndarray(draw(0, W, H), format="rgb24")
    assert mask.apply(frame) is frame
    image = draw(0, W, H)
    assert mask.apply_rgb(image) is image
    assert PrivacyMask([ZONE], W, H)


def test_apply_blacks_luma_and_every_touching_chroma_sample() -> None:
    mask = PrivacyMask([ZONE], W, H)
    # Colour everywhere, so every chroma sample the mask misses would keep its tint.
    source = np.full((H, W, 3), SQUARE_RGB, np.uint8)
    source[:, ::2] = (40, 220, 60)
    frame = av.VideoFrame.from_ndarray(source, format="rgb24")
    out = mask.apply(frame)
    assert out.format.name == "yuv420p"
    planes = out.to_ndarray()  # Y rows, then U and V packed W wide
    y = planes[:H]
    u = planes[H : H + H // 4].reshape(H // 2, W // 2)
    v = planes[H + H // 4 :].reshape(H // 2, W // 2)
    luma = mask.luma_mask(W, H)
    assert (luma >= _polygon()).all()  # the mask covers the whole polygon
    assert (y[luma] == 16).all()
    # Any chroma sample whose 2x2 block holds a masked pixel is neutral, and its neighbours
    # too (players interpolate chroma); samples well away from the zone keep their colour.
    touching = luma.reshape(H // 2, 2, W // 2, 2).any(axis=(1, 3))
    near = cv2.dilate(touching.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert (u[near] == 128).all() and (v[near] == 128).all()
    far = ~cv2.dilate(near.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert (v[far] != 128).all()
    # Outside the mask the picture is unchanged.
    assert (y[~luma] == frame.reformat(format="yuv420p").to_ndarray()[:H][~luma]).all()
    rgb = out.to_ndarray(format="rgb24")
    assert rgb[_polygon()].max() < DARK


def test_apply_rgb_for_thumbnails() -> None:
    mask = PrivacyMask([ZONE], W, H)
    image = draw(25, W, H)
    out = mask.apply_rgb(image)
    luma = mask.luma_mask(W, H)
    assert (out[luma] == 0).all()
    assert (out[~luma] == image[~luma]).all()
    assert _in_square(image[luma]).any()  # there was something to hide


def test_stored_clip_never_shows_the_zone(video: Path, tmp_path: Path) -> None:
    mask = PrivacyMask([ZONE], W, H)
    clip = _record(video, Spool(tmp_path), mask)
    assert clip.metadata["reencoded"] is True
    decoded = decode_clip(clip.entry.clip)
    assert decoded.codec == "h264" and decoded.pix_fmt == "yuv420p"
    inside = _polygon()
    # Compare the rest of the picture away from the zone's edge (compression smears edges).
    far = ~cv2.dilate(mask.luma_mask(W, H).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    hidden_square_frames = 0
    for index, rgb in zip(decoded.indices, decoded.frames, strict=True):
        assert rgb[inside].max() < DARK, f"frame {index} leaks the privacy zone"
        source = draw(index, W, H)
        hidden_square_frames += bool(_in_square(source[inside]).any())
        diff = np.abs(rgb[far].astype(int) - source[far].astype(int))
        assert diff.mean() < 4, f"frame {index} damaged outside the zone"
    # The square really crossed the zone during the clip, so the assertions above had work.
    assert hidden_square_frames > 10
    assert decoded.indices == list(
        range(decoded.indices[0], decoded.indices[0] + len(decoded.indices))
    )


def test_thumbnail_is_masked(video: Path, tmp_path: Path) -> None:
    mask = PrivacyMask([ZONE], W, H)
    clip = _record(video, Spool(tmp_path), mask)
    assert clip.entry.thumbnail is not None
    jpeg = clip.entry.thumbnail.read_bytes()
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (H, W, 3)
    rgb = image[..., ::-1]
    inside = _polygon()
    assert rgb[inside].max() < DARK
    # The thumbnail is the peak-score frame, where the square is inside the zone.
    assert _in_square(draw(25, W, H)[inside]).any()


def test_without_a_zone_the_square_is_recorded(video: Path, tmp_path: Path) -> None:
    # The control for the tests above: the same area is bright when nothing masks it.
    clip = _record(video, Spool(tmp_path), PrivacyMask.none())
    decoded = decode_clip(clip.entry.clip)
    inside = _polygon()
    assert max(int(rgb[inside].max()) for rgb in decoded.frames) > 200
