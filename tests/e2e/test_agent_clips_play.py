"""The agent's clips play in a real browser: a stream copy and a masked re-encode.

"Clips are MP4 that browsers play" is a claim about browsers, so chromium checks it: each
clip is served over HTTP to a `<video>` element that must load it at its recorded size
and duration, and play forward.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from doorwarden.agent.capture.sources import open_source
from doorwarden.agent.capture.synthetic import encode_h264
from doorwarden.agent.config.models import CameraConfig, FileSource, SyntheticSource
from doorwarden.agent.pipeline import CameraJob
from doorwarden.agent.recording.recorder import FinishedClip
from doorwarden.agent.recording.spool import Spool

SCENE = SyntheticSource(
    kind="synthetic", width=640, height=360, fps=25, duration_s=8, scene="object", enter_at_s=2
)


def record(tmp: Path, *, privacy: bool) -> FinishedClip:
    source_file = tmp / "camera.mp4"
    if not source_file.exists():
        encode_h264(SCENE, source_file)
    cfg = FileSource(kind="file", path=source_file, pace=False)
    camera = CameraConfig.model_validate(
        {
            "name": "door",
            "source": cfg,
            "privacy_zones": [[(0, 0), (0.3, 0), (0.3, 0.3)]] if privacy else [],
            "record": {"pre_roll_s": 1, "post_roll_s": 1, "min_clip_s": 2, "cooldown_s": 0},
            "detect": {"kind": "none"},
        }
    )
    job = CameraJob(camera, Spool(tmp / ("masked" if privacy else "copied")))
    with open_source(cfg) as source:
        job.opened(source)
        for sample in source.samples():
            job.handle(sample)
    job.closed()
    [clip] = job.clips
    assert clip.reencoded is privacy
    return clip


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("clips")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()


PLAY = """async (src) => {
  const video = document.createElement("video");
  video.muted = true;
  document.body.append(video);
  const loaded = new Promise((ok, fail) => {
    video.onloadedmetadata = ok;
    video.onerror = () => fail(new Error("video error " + (video.error && video.error.code)));
  });
  video.src = src;
  await loaded;
  await video.play();
  await new Promise((ok) => setTimeout(ok, 1500));
  return {width: video.videoWidth, height: video.videoHeight, duration: video.duration,
          time: video.currentTime, error: video.error && video.error.code};
}"""


@pytest.mark.parametrize("privacy", [False, True], ids=["stream-copy", "masked-reencode"])
def test_clip_plays_in_chromium(browser: Browser, served: tuple[str, Path], privacy: bool) -> None:
    base, root = served
    clip = record(root, privacy=privacy)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{base}/camera.mp4")  # any page of this origin
        relative = clip.entry.clip.relative_to(root).as_posix()
        result = page.evaluate(PLAY, f"{base}/{relative}")
    finally:
        context.close()
    assert result["error"] is None
    assert (result["width"], result["height"]) == (640, 360)
    assert result["duration"] == pytest.approx(clip.metadata["duration_s"], abs=0.2)
    assert result["time"] > 0.5  # it really played forward
