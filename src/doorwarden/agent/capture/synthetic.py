"""Scripted synthetic scenes with known ground truth, for tests and benchmarks.

A scene is a textured static background (gradients and shapes, deterministic from the
seed) with mild sensor noise, plus one scripted event:

* ``static``: nothing happens;
* ``object``: a person-sized textured box enters from the left edge at ``enter_at_s`` and
  walks across the image in `CROSSING_S` seconds;
* ``lights``: the whole image brightens by ~35% over 0.2 s at ``enter_at_s``;
* ``noise``: heavy sensor noise (sigma ~8) and nothing else;
* ``sunset``: brightness falls ~50% linearly over the whole duration.

Only the ``object`` scene has something a motion detector should report; the others are
the false-positive traps.

With ``audio``, any scene gets a tone track (`tone`): a 1 kHz beep of `BEEP_S` every
``beep_every_s`` seconds, and a small white square (`flash_box`, top-left, too small to
count as motion) in exactly the frames of each beep's start, so audio/video sync can be
measured from what a player shows and plays.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from doorwarden.agent.capture.audio import AacEncoder, no_audio_warning
from doorwarden.agent.capture.clock import Clock
from doorwarden.agent.capture.media import AudioInfo, AudioPacket, Sample, StreamInfo
from doorwarden.agent.capture.source import VideoSource, frame_time
from doorwarden.agent.config.models import SyntheticSource

CROSSING_S = 5.0  # a person walks past a doorbell camera's field of view in a few seconds
LIGHTS_GAIN = 1.35
LIGHTS_RAMP_S = 0.2
SUNSET_FLOOR = 0.5
_NOISE_PAD = 64  # noise frames are cut from a larger random field at a random offset
_NOISE_BANK = 3
TONE_RATE = 48_000
BEEP_S = 0.1
BEEP_HZ = 1000.0
BEEP_LEVEL = 0.5
FLASH_S = 0.1  # the square shows for the frames whose time is within this of a beep


def beep_phase(cfg: SyntheticSource, t: np.ndarray) -> np.ndarray:
    """Seconds since the last beep started (beeps at k * beep_every_s, k >= 1); negative
    before the first."""
    every = cfg.beep_every_s
    k = np.floor(t / every + 1e-9)
    return np.where(k >= 1, t - k * every, -1.0)


def tone(cfg: SyntheticSource, first: int, count: int, rate: int = 48_000) -> np.ndarray:
    """Samples first..first+count of the tone track, float32 shaped (1, count) (planar mono)."""
    t = (first + np.arange(count, dtype=np.float64)) / rate
    phase = beep_phase(cfg, t)
    on = (phase >= 0) & (phase < BEEP_S)
    wave = BEEP_LEVEL * np.sin(2 * np.pi * BEEP_HZ * t) * on
    return wave.astype(np.float32).reshape(1, count)


def flash_box(cfg: SyntheticSource) -> tuple[int, int, int]:
    """(x, y, side) of the flash square: ~0.1% of the image, below motion's minimum area."""
    side = max(8, min(cfg.width, cfg.height) // 24)
    return 4, 4, side


def frame_count(cfg: SyntheticSource) -> int:
    return max(1, round(cfg.duration_s * cfg.fps))


def _object_size(cfg: SyntheticSource) -> tuple[int, int]:
    h = max(8, cfg.height // 6)
    return max(4, round(h * 0.4)), h


def ground_truth(cfg: SyntheticSource) -> list[tuple[float, float]]:
    """Intervals (start_s, end_s) during which a real object is in view."""
    if cfg.scene != "object" or cfg.enter_at_s >= cfg.duration_s:
        return []
    return [(cfg.enter_at_s, min(cfg.enter_at_s + CROSSING_S, cfg.duration_s))]


def _background(cfg: SyntheticSource) -> np.ndarray:
    """A float32 HxWx3 scene in 0..255: sky/ground gradients, walls, a door, a path."""
    rng = np.random.default_rng(cfg.seed)
    w, h = cfg.width, cfg.height
    ys = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
    base = 70 + 80 * ys + 25 * xs  # light falls off towards the top-left
    img = np.repeat(base[:, :, None], 3, axis=2) * np.array([0.95, 1.0, 1.05], np.float32)
    for _ in range(12):  # shapes: windows, bins, plants; colours drawn from the seed
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(w // 20, w // 4)), y0 + int(rng.integers(h // 20, h // 4))
        colour = tuple(float(c) for c in rng.uniform(30, 200, 3))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x0, y0), (x1, y1), colour, -1)
        else:
            cv2.circle(img, (x0, y0), max(2, (x1 - x0) // 2), colour, -1)
    # Low-frequency texture (brick, grass) so the image is not flat at analysis scale.
    tex = rng.normal(0, 12, (max(2, h // 8), max(2, w // 8), 1)).astype(np.float32)
    img += cv2.resize(tex, (w, h), interpolation=cv2.INTER_LINEAR)[:, :, None]
    out: np.ndarray = np.clip(img, 0, 255)
    return out


def _sprite(cfg: SyntheticSource) -> np.ndarray:
    """The walker: dark trousers, a patterned coat, a lighter head; float32 h x w x 3."""
    rng = np.random.default_rng(cfg.seed + 1)
    w, h = _object_size(cfg)
    body = np.empty((h, w, 3), np.float32)
    head = h // 6
    body[:head] = (190, 160, 140)
    body[head : h * 3 // 5] = (40, 60, 150)
    body[h * 3 // 5 :] = (35, 35, 45)
    body += rng.normal(0, 10, (h, w, 1)).astype(np.float32)
    return np.clip(body, 0, 255)


def _gain(cfg: SyntheticSource, t: float) -> float:
    if cfg.scene == "lights":
        ramp = min(max((t - cfg.enter_at_s) / LIGHTS_RAMP_S, 0.0), 1.0)
        return 1.0 + (LIGHTS_GAIN - 1.0) * ramp
    if cfg.scene == "sunset":
        return 1.0 - (1.0 - SUNSET_FLOOR) * min(t / cfg.duration_s, 1.0)
    return 1.0


def render_scene(cfg: SyntheticSource) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (time_s, rgb24 HxWx3 uint8) for every frame of the scene."""
    rng = np.random.default_rng(cfg.seed + 2)
    w, h = cfg.width, cfg.height
    bg = _background(cfg)
    sprite = _sprite(cfg)
    sw, sh = sprite.shape[1], sprite.shape[0]
    speed = (w + sw) / CROSSING_S
    sigma = 8.0 if cfg.scene == "noise" else 2.0
    # Drawing fresh Gaussian noise for every pixel of every 1080p frame dominates the cost;
    # a random window into a few larger fields is as uncorrelated frame to frame.
    bank = [
        rng.normal(0, sigma, (h + _NOISE_PAD, w + _NOISE_PAD, 1)).astype(np.float32)
        for _ in range(_NOISE_BANK)
    ]
    top = int(h * 0.55)
    for i in range(frame_count(cfg)):
        t = i / cfg.fps
        img = bg * _gain(cfg, t) if cfg.scene in ("lights", "sunset") else bg.copy()
        if cfg.scene == "object" and t >= cfg.enter_at_s:
            right = round((t - cfg.enter_at_s) * speed)  # leading edge, from the left border
            x0, y0 = right - sw, top + round(2 * np.sin(t * 8))  # a slight walking bob
            sx0, sx1 = max(0, -x0), min(sw, w - x0)
            if sx0 < sx1 and y0 >= 0 and y0 + sh <= h:
                img[y0 : y0 + sh, x0 + sx0 : x0 + sx1] = sprite[:, sx0:sx1]
        dy, dx = (int(v) for v in rng.integers(0, _NOISE_PAD, 2))
        img += bank[i % _NOISE_BANK][dy : dy + h, dx : dx + w]
        if cfg.audio and 0 <= float(beep_phase(cfg, np.array(t))) < FLASH_S - 1e-9:
            x, y, side = flash_box(cfg)
            img[y : y + side, x : x + side] = 255.0
        yield t, np.clip(img, 0, 255).astype(np.uint8)


def encode_h264(
    cfg: SyntheticSource, path: Path, *, gop_s: float = 2.0, audio_codec: str = "aac"
) -> None:
    """Write the scene as H.264 (libx264, yuv420p), in MP4 with faststart by default (the
    container follows the file's suffix), with the tone track in `audio_codec` (aac;
    pcm_mulaw, pcm_alaw at 8 kHz in .mov; libopus in .mkv) when `cfg.audio`.

    Keyframes fall exactly every `gop_s` seconds (scene-cut detection off), which tests of
    keyframe-aligned pre-roll rely on.
    """
    rate = Fraction(cfg.fps).limit_denominator(1001)
    gop = max(1, round(gop_s * cfg.fps))
    options = {"movflags": "+faststart"} if path.suffix in (".mp4", ".mov") else {}
    with av.open(str(path), "w", container_options=options) as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = cfg.width, cfg.height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.time_base = 1 / rate
        stream.options = {
            "preset": "veryfast",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
        }
        sound = _ToneWriter(out, cfg, audio_codec) if cfg.audio else None
        for i, (_, rgb) in enumerate(render_scene(cfg)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            frame.time_base = 1 / rate
            out.mux(stream.encode(frame))
            if sound is not None:
                sound.until((i + 1) / cfg.fps)
        out.mux(stream.encode(None))
        if sound is not None:
            sound.close()


class _ToneWriter:
    """The tone track into a file, in whatever codec a test wants a camera to send."""

    def __init__(self, out: Any, cfg: SyntheticSource, codec: str) -> None:
        self.rate = 8000 if codec.startswith("pcm_") else 48_000
        self.out, self.cfg, self.written = out, cfg, 0
        self.stream = out.add_stream(codec, rate=self.rate, layout="mono")
        ctx = self.stream.codec_context
        self.size = ctx.frame_size or 160  # PCM codecs take any size: 20 ms, as RTP sends
        self.format = ctx.format.name
        self.resampler = av.AudioResampler(format=self.format, layout="mono", rate=self.rate)

    def until(self, end_s: float) -> None:
        while self.written + self.size <= end_s * self.rate:
            pcm = tone(self.cfg, self.written, self.size, self.rate)
            fmt = self.stream.codec_context.format.name
            frame = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="mono")
            frame.sample_rate = self.rate
            if fmt != "fltp":
                frame = av.AudioResampler(format=fmt, layout="mono", rate=self.rate).resample(
                    frame
                )[0]
            frame.pts, frame.time_base = self.written, Fraction(1, self.rate)
            self.written += self.size
            self.out.mux(self.stream.encode(frame))

    def close(self) -> None:
        self.out.mux(self.stream.encode(None))


class SyntheticVideoSource(VideoSource):
    """A scripted scene encoded to real H.264 in memory, and decoded back, like a camera.

    Packets carry SPS/PPS in-band at every keyframe (no global header), so a decoder that
    joins at any keyframe can decode them, as with a camera. There is no demuxer stream,
    so `info.stream` is None.
    """

    def __init__(
        self, cfg: SyntheticSource, *, camera: str | None = None, audio: bool = False
    ) -> None:
        super().__init__(camera=camera, pace=cfg.pace, audio=audio)
        self.cfg = cfg
        rate = Fraction(cfg.fps).limit_denominator(1001)
        gop = max(1, round(2.0 * cfg.fps))
        enc = av.CodecContext.create("libx264", "w")
        enc.width, enc.height, enc.pix_fmt = cfg.width, cfg.height, "yuv420p"
        enc.framerate, enc.time_base, enc.gop_size = rate, 1 / rate, gop
        # scenecut=0: keyframes exactly every 2 s, which the recorder's pre-roll relies on.
        enc.options = {"tune": "zerolatency", "preset": "veryfast", "x264-params": "scenecut=0"}
        self._enc = enc
        self._dec = av.CodecContext.create("h264", "r")
        self._dec.thread_type = "AUTO"
        self._clock = Clock(cfg.fps)
        self._tone: AacEncoder | None = None
        if audio and not cfg.audio:
            no_audio_warning(camera, "the synthetic source (its `audio` is off)")
        elif audio:
            self._tone, self._tone_samples = AacEncoder(TONE_RATE, 1), 0
        info = AudioInfo(TONE_RATE, 1, self._tone.extradata, "pcm") if self._tone else None
        self.info = StreamInfo(cfg.width, cfg.height, cfg.fps, enc.time_base, "h264", None, info)

    def samples(self) -> Iterator[Sample]:
        for index, (_, rgb) in enumerate(render_scene(self.cfg)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = index
            for packet in self._enc.encode(frame):
                if not (sample := self._sample(packet)):
                    return
                yield sample
        for packet in self._enc.encode(None):
            if not (sample := self._sample(packet)):
                return
            yield sample
        tail = self._dec.decode(None)
        if tail and self._clock.last is not None:
            yield Sample(None, tail, self._clock.last, False)

    def _sample(self, packet: av.Packet[Any]) -> Sample | None:
        t = self._clock.at(packet.pts, self._enc.time_base)
        frames = self._dec.decode(packet)
        if not self._paced(t):
            return None
        if self._tone is None:
            return Sample(packet, frames, t, packet.is_keyframe)
        # The tone up to the next frame's time: audio a frame ahead, never behind.
        times = [frame_time(self._clock, f, self._enc.time_base, t) for f in frames]
        audio = self._audio_until(t + 1 / self.cfg.fps)
        return Sample(packet, frames, t, packet.is_keyframe, audio, times)

    def _audio_until(self, end: float) -> list[AudioPacket]:
        """The tone track from where it stopped up to `end` seconds."""
        assert self._tone is not None  # noqa: S101 - callers check
        first, count = self._tone_samples, round(end * TONE_RATE) - self._tone_samples
        if count <= 0:
            return []
        self._tone_samples += count
        pcm = tone(self.cfg, first, count, TONE_RATE)
        frame = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="mono")
        frame.sample_rate = TONE_RATE
        return self._tone.push(frame, first / TONE_RATE)
