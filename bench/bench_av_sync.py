"""Live view's audio/video sync, measured in headless chromium.

The whole path, each part real and in its own process, on loopback:

    synthetic camera with a tone track -> doorwarden agent run -> doorwarden serve (relay)
    -> chromium (live page, MSE)

The camera beeps (1 kHz, 0.1 s) every second and shows a white square in the frames of
each beep's start (agent/capture/synthetic.py). Two cameras, one per live path:

* `synthetic`: the synthetic source itself (no demuxer stream): decoded, re-encoded;
* `file`: the same scene written to an MP4 with AAC, played looped and paced as a camera:
  stream copy of both tracks.

Two measures per camera:

* received: everything the page appends to its SourceBuffer is kept and decoded here with
  PyAV; offset = each beep's start - the time of the frame with its square (the stream
  the page plays, exactly, as the agent muxed it and the relay passed it on);
* played: in the page, each frame shown (requestVideoFrameCallback, its expected display
  time) is checked for the square, and the element's sound (captureStream -> Web Audio)
  for the beep's start; offset = beep heard - square shown, on the page's clock. Headless
  chromium plays sound into a fake output, whose clock stands in for a speaker.

Positive: sound late. Target: |p95| within 100 ms.

Run: .venv/bin/python bench/bench_av_sync.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `python bench/x.py` puts only bench/ on the path

from bench.bench_live_latency import (  # noqa: E402
    PASSWORD,
    RESIDENT,
    doorwarden,
    free_port,
    process,
    wait_for_line,
    wait_healthy,
)
from tests.unit.agent.capture.sound import beeps, flashes  # noqa: E402

from doorwarden.agent.capture.synthetic import encode_h264, flash_box  # noqa: E402
from doorwarden.agent.config.models import SyntheticSource  # noqa: E402

SCENE = {"scene": "static", "width": 320, "height": 180, "fps": 25, "audio": True,
         "beep_every_s": 1.0}  # fmt: skip

# Before the page's own script: keep what it appends, and watch what it shows and plays.
MEASURE = """
window.avBench = {appended: [], shown: [], heard: [], errors: []};
const realAppend = SourceBuffer.prototype.appendBuffer;
SourceBuffer.prototype.appendBuffer = function (data) {
  window.avBench.appended.push(new Uint8Array(data.slice ? data.slice(0) : data));
  return realAppend.call(this, data);
};
document.addEventListener("DOMContentLoaded", () => {
  const video = document.getElementById("live-video");
  const [bx, by, side] = BOX;
  const canvas = document.createElement("canvas");
  canvas.width = video.width || 320; canvas.height = 180;
  const g = canvas.getContext("2d", {willReadFrequently: true});
  let lit = false;
  const onFrame = (now, meta) => {
    g.drawImage(video, 0, 0, 320, 180);
    const px = g.getImageData(bx + 2, by + 2, side - 4, side - 4).data;
    let sum = 0;
    for (let i = 0; i < px.length; i += 4) sum += px[i];
    const on = sum / (px.length / 4) > 220;
    if (on && !lit) window.avBench.shown.push(performance.timeOrigin + meta.expectedDisplayTime);
    lit = on;
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  video.addEventListener("playing", () => {
    if (window.avBench.ctx) return;
    try {
      const ctx = new AudioContext({latencyHint: "interactive"});
      window.avBench.ctx = ctx;
      const source = ctx.createMediaStreamSource(video.captureStream());
      const probe = ctx.createScriptProcessor(256, 1, 1);
      let loudUntil = 0;
      probe.onaudioprocess = (event) => {
        const pcm = event.inputBuffer.getChannelData(0);
        const stamp = ctx.getOutputTimestamp();
        for (let i = 0; i < pcm.length; i++) {
          if (Math.abs(pcm[i]) < 0.2) continue;
          // The buffer's i-th sample, on the page's clock.
          const at = stamp.performanceTime + (event.playbackTime - stamp.contextTime
                     + i / ctx.sampleRate) * 1000 - 256 / ctx.sampleRate * 1000;
          const wall = performance.timeOrigin + at;
          if (wall > loudUntil + 500) window.avBench.heard.push(wall);
          loudUntil = wall;
          break;
        }
      };
      source.connect(probe);
      probe.connect(ctx.destination);
    } catch (err) { window.avBench.errors.push(String(err)); }
  });
});
"""


def pair(url: str, work: Path, server_env: dict[str, str], clip: Path) -> tuple[Path, str]:
    with httpx.Client(base_url=url, timeout=30) as client:
        login = client.post("/api/v1/session", json={"email": RESIDENT, "password": PASSWORD})
        login.raise_for_status()
        client.headers["x-csrf-token"] = login.json()["csrf_token"]
        home = client.post("/api/v1/households", json={"name": "Bench", "time_zone": "UTC"})
        household = home.json()["id"]
        code = client.post(f"/api/v1/households/{household}/pairing-codes").json()["code"]
    scene = ", ".join(f"{k}: {str(v).lower()}" for k, v in SCENE.items())
    config = work / "agent.yaml"
    config.write_text(
        f"spool_dir: {work / 'spool'}\nstate_dir: {work / 'state'}\ncameras:\n"
        f"  - name: synthetic\n    audio: true\n"
        f"    source: {{kind: synthetic, {scene}, duration_s: 3600, pace: true}}\n"
        "    detect: {kind: none}\n    motion: {min_area: 0.9}\n"
        f"  - name: file\n    audio: true\n"
        f"    source: {{kind: file, path: '{clip}', loop: true, pace: true}}\n"
        "    detect: {kind: none}\n    motion: {min_area: 0.9}\n"
    )
    doorwarden(server_env, "agent", "pair", "--server", url, "--code", code, "--config",
               str(config))  # fmt: skip
    return config, str(household)


def watch(url: str, household: str, camera: str, seconds: float) -> dict[str, list[float]]:
    with httpx.Client(base_url=url, timeout=30) as client:
        client.post("/api/v1/session", json={"email": RESIDENT, "password": PASSWORD})
        [device] = client.get(f"/api/v1/households/{household}/devices").json()
        cookies = client.cookies.jar
    box = list(flash_box(SyntheticSource(kind="synthetic", **SCENE)))  # type: ignore[arg-type]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"],
        )
        context = browser.new_context()
        context.add_cookies([{"name": c.name, "value": c.value or "", "url": url} for c in cookies])
        page = context.new_page()
        page.add_init_script(MEASURE.replace("BOX", str(box)))
        page.goto(f"{url}/households/{household}/cameras/{device['id']}/live?camera={camera}")
        page.wait_for_function("() => window.avBench.shown.length > 0", timeout=30_000)
        page.wait_for_timeout(seconds * 1000)
        shown, heard, errors = page.evaluate(
            "() => [window.avBench.shown, window.avBench.heard, window.avBench.errors]"
        )
        appended = page.evaluate("() => window.avBench.appended.map((a) => Array.from(a))", None)
        browser.close()
    stream = b"".join(bytes(chunk) for chunk in appended)
    received = [b - f for f, b in _pairs(flashes(stream, _scene()), beeps(stream))]
    played = [b - f for f, b in _pairs([s / 1000 for s in shown], [h / 1000 for h in heard])]
    if errors:
        print(f"  page errors: {errors}")
    return {"received": [x * 1000 for x in received], "played": [x * 1000 for x in played]}


def _scene() -> SyntheticSource:
    return SyntheticSource(kind="synthetic", **SCENE)  # type: ignore[arg-type]


def _pairs(seen: list[float], heard: list[float]) -> list[tuple[float, float]]:
    """Each flash with the beep nearest to it, when one is within half a beep interval."""
    out = []
    for f in seen:
        near = min(heard, key=lambda b, f=f: abs(b - f), default=None)
        if near is not None and abs(near - f) < SCENE["beep_every_s"] / 2:  # type: ignore[operator]
            out.append((f, near))
    return out


def p95_abs(values: list[float]) -> float:
    ordered = sorted(map(abs, values))
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] if ordered else 0.0


def line(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<30} no pairs measured"
    return (
        f"{name:<30} p50 {statistics.median(values):+6.0f} ms  |p95| {p95_abs(values):5.0f} ms  "
        f"range {min(values):+.0f}..{max(values):+.0f} ms  ({len(values)} beeps)"
    )


def run(seconds: float, work: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOORWARDEN_")}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server_env = {
        **env,
        "DOORWARDEN_DEVELOPMENT": "1",
        "DOORWARDEN_SECRET_KEY": secrets.token_urlsafe(36),
        "DOORWARDEN_DATA_DIR": str(work / "server"),
        "DOORWARDEN_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'server.db'}",
        "DOORWARDEN_PUBLIC_BASE_URL": url,
        "DOORWARDEN_LOG_JSON": "0",
    }
    clip = work / "tone.mp4"
    encode_h264(_scene().model_copy(update={"duration_s": 60.0}), clip, gop_s=1.0)
    doorwarden(server_env, "db", "upgrade")
    doorwarden(
        {**server_env, "BENCH_PASSWORD": PASSWORD}, "admin", "create-user", "--email", RESIDENT,
        "--role", "resident", "--password-env", "BENCH_PASSWORD",
    )  # fmt: skip
    serve = [sys.executable, "-m", "doorwarden", "serve", "--port", str(port)]
    with process(serve, work / "server.log", server_env):
        wait_healthy(url)
        config, household = pair(url, work, server_env, clip)
        agent = [sys.executable, "-m", "doorwarden", "agent", "run", "--config", str(config)]
        with process(agent, work / "agent.log", env):
            wait_for_line(work / "agent.log", "live.connected")
            time.sleep(3)
            every = SCENE["beep_every_s"]
            print(f"scene: 320x180 at 25 fps, beep + flash every {every} s; {seconds:.0f} s each")
            worst = 0.0
            for camera, path in (("synthetic", "re-encode"), ("file", "stream copy")):
                measured = watch(url, household, camera, seconds)
                print(f"{camera} ({path}):")
                for kind in ("received", "played"):
                    print("  " + line(kind, measured[kind]))
                    worst = max(worst, p95_abs(measured[kind]))
    print(f"target |p95| <= 100 ms: {'met' if worst <= 100 else 'NOT met'} (worst {worst:.0f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="av-sync-bench-") as tmp:
        run(args.seconds, Path(tmp))


if __name__ == "__main__":
    main()
