"""Synthetic scenes: frame counts, sizes, ground truth, and an H.264 file PyAV reads back."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from doorwarden.agent.capture.synthetic import encode_h264, ground_truth, render_scene
from doorwarden.agent.config.models import SyntheticSource

SCENES = ["static", "object", "lights", "noise", "sunset"]


def _cfg(scene: str, **kw: object) -> SyntheticSource:
    base: dict[str, object] = {"kind": "synthetic", "scene": scene, "width": 320, "height": 180}
    return SyntheticSource.model_validate(base | kw)


@pytest.mark.parametrize("scene", SCENES)
def test_scene_frame_count_and_size(scene: str) -> None:
    frames = list(render_scene(_cfg(scene, fps=8, duration_s=2.5)))
    assert len(frames) == 20
    assert [t for t, _ in frames[:3]] == [0.0, 0.125, 0.25]
    for _, rgb in frames:
        assert rgb.shape == (180, 320, 3)
        assert rgb.dtype == np.uint8


def test_render_is_deterministic_and_background_textured() -> None:
    a = next(iter(render_scene(_cfg("static", seed=3))))[1]
    b = next(iter(render_scene(_cfg("static", seed=3))))[1]
    c = next(iter(render_scene(_cfg("static", seed=4))))[1]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.std() > 20  # a scene, not a flat grey card


def _mean_luma(rgb: np.ndarray) -> float:
    return float(rgb.astype(np.float32).mean())


def test_lights_brighten_and_sunset_darkens() -> None:
    lights = dict(render_scene(_cfg("lights", fps=10, duration_s=5, enter_at_s=2)))
    assert 1.2 < _mean_luma(lights[3.0]) / _mean_luma(lights[1.0]) < 1.4
    sunset = list(render_scene(_cfg("sunset", fps=10, duration_s=5)))
    assert 0.45 < _mean_luma(sunset[-1][1]) / _mean_luma(sunset[0][1]) < 0.6


def test_noise_scene_is_noisier_than_static() -> None:
    def temporal_sd(scene: str) -> float:
        frames = [rgb.astype(np.float32) for _, rgb in render_scene(_cfg(scene, duration_s=1))]
        return float(np.std(frames[1] - frames[0]))

    assert temporal_sd("noise") > 3 * temporal_sd("static")


def test_object_ground_truth_and_position() -> None:
    cfg = _cfg("object", fps=10, duration_s=10, enter_at_s=3)
    assert ground_truth(cfg) == [(3.0, 8.0)]
    for scene in ("static", "lights", "noise", "sunset"):
        assert ground_truth(_cfg(scene)) == []
    frames = dict(render_scene(cfg))
    moved = np.abs(frames[4.0].astype(np.int16) - frames[2.0].astype(np.int16)).max(axis=2)
    cols = np.nonzero((moved > 60).sum(axis=0) > 10)[0]
    # One second after entering, the walker is within the left half of the image.
    assert cols.size > 0
    assert cols.min() < 160
    assert cols.max() < 160


def test_encode_h264_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "scene.mp4"
    encode_h264(_cfg("object", fps=10, duration_s=5), path, gop_s=1.0)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.width, stream.height) == (320, 180)
        frames = [(float(f.time or 0), f.key_frame) for f in container.decode(stream)]
    assert len(frames) == 50
    keys = [t for t, key in frames if key]
    assert keys == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0])
    # faststart: the moov atom precedes the media data.
    head = path.read_bytes()[:4096]
    assert head.find(b"moov") != -1
    assert head.find(b"moov") < max(head.find(b"mdat"), 4096)
