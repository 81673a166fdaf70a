"""Mouth-to-speaker latency of two-way talk, on loopback, each part real and in its own
process:

    chromium (fake microphone, live page, Talk: WebCodecs Opus over the viewer's WebSocket)
    -> doorwarden serve (relay) -> doorwarden agent run (decode, G.711/AAC, RTP over RTSP)
    -> an ONVIF camera's audio backchannel (GStreamer's GstRTSPOnvifServer: depayload,
       jitter buffer, decode; tests/unit/agent/onvif_rtsp_server.py)

The fake microphone plays a WAV made here: a burst of a tone every period, silence
between. In the page, an init script wraps getUserMedia and taps the stream the page gets
with a ScriptProcessor (256 samples, 5 ms at 48 kHz): a burst's onset is the wall time
(performance.timeOrigin + performance.now()) of the first block whose RMS crosses a
threshold after silence. At the camera, the rig writes each decoded buffer's arrival wall
time and RMS (buffers.jsonl); a burst's onset is the first loud buffer after silence. Each
page onset is paired with the first camera onset within 2 s after it; one machine clock.
Target: p95 under 500 ms. The tap runs on the page's main thread, as talk.js's capture
does: when that thread is starved, an onset is stamped late and that burst reads short.

For reference, in the same run: the rig's own receive path, with the agent's backchannel
client (agent/talk/) sending the same bursts straight from this process, in real time
(no browser, no server, no Opus), so what browser + server + agent add is the difference.

Run: .venv/bin/python bench/bench_talk_latency.py [--seconds 20] [--codec pcmu]
Needs Debian's python3-gi with gst-rtsp-server (ONVIF), and chromium (python3 dev.py setup).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `python bench/x.py` puts only bench/ on the path

from bench.bench_live_latency import (  # noqa: E402
    PASSWORD,
    RESIDENT,
    ROOT,
    free_port,
    p95,
    prepare_server,
    process,
    wait_for_line,
    wait_healthy,
)
from bench.bench_live_latency import pair_agent as pair_live_agent  # noqa: E402
from tests.e2e.microphone import RATE, write_wav  # noqa: E402

from doorwarden.agent.talk.backchannel import Backchannel  # noqa: E402
from doorwarden.agent.talk.decode import Resampler  # noqa: E402

RIG = ROOT / "tests" / "unit" / "agent" / "onvif_rtsp_server.py"
LOUD = 0.05  # RMS (0..1) a burst crosses: the tone is at 0.35, silence at 0
QUIET_S = 0.3  # this long below LOUD before a new onset counts (bursts are 150 ms)
PAIR_WINDOW_S = 2.0
TARGET_MS = 500

# Before the page's own script: every stream getUserMedia returns (talk.js's microphone)
# is tapped, and each burst's onset recorded as the page's scripts would see it.
TAP = """
window.talkBench = {onsets: [], talking: null, blocks: 0};
(() => {
  const LOUD = LOUD_RMS, QUIET_MS = QUIET_MILLISECONDS;
  const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const stream = await real(constraints);
    const context = new AudioContext({sampleRate: 48000});
    const source = context.createMediaStreamSource(stream);
    const node = context.createScriptProcessor(256, 1, 1);
    let lastLoud = -1e9;
    node.onaudioprocess = (event) => {
      const now = performance.timeOrigin + performance.now();
      const data = event.inputBuffer.getChannelData(0);
      let sum = 0;
      for (let i = 0; i < data.length; i++) sum += data[i] * data[i];
      const rms = Math.sqrt(sum / data.length);
      window.talkBench.blocks += 1;
      if (rms < LOUD) return;
      if (now - lastLoud > QUIET_MS) window.talkBench.onsets.push(now);
      lastLoud = now;
    };
    source.connect(node);
    node.connect(context.destination);  // a ScriptProcessor runs only when connected
    await context.resume();
    window.talkBench.tap = [context, source, node];  // kept from the garbage collector
    return stream;
  };
  document.addEventListener("DOMContentLoaded", () => {
    const box = document.getElementById("talk");
    if (!box) return;
    new MutationObserver(() => {
      if (box.dataset.state === "talking" && window.talkBench.talking === null)
        window.talkBench.talking = performance.timeOrigin + performance.now();
    }).observe(box, {attributes: true, attributeFilter: ["data-state"]});
  });
})();
""".replace("LOUD_RMS", str(LOUD)).replace("QUIET_MILLISECONDS", str(QUIET_S * 1000))


def burst_samples(seconds: float, period_s: float, burst_s: float, hz: float) -> np.ndarray:
    """Float samples at RATE: `burst_s` of the tone at the start of every period, silence
    between; 5 ms ramps (after the period's start, never before it: the onset is where the
    reference says) so that an onset is a tone, not a click."""
    t = np.arange(int(seconds * RATE)) / RATE
    on = ((t % period_s) < burst_s).astype(np.float64)
    ramp = int(0.005 * RATE)
    envelope = np.convolve(on, np.ones(ramp) / ramp)[: t.size]
    return 0.5 * np.sin(2 * np.pi * hz * t) * envelope


def sink_onsets(buffers: Path) -> list[float]:
    """Wall times (s) of the first loud buffer after QUIET_S of quiet, at the camera."""
    onsets: list[float] = []
    last_loud = -1e18
    lines = buffers.read_text().splitlines() if buffers.exists() else []
    for line in lines:
        entry = json.loads(line)
        wall, rms = float(entry["wall"]), float(entry["rms"])
        if rms < LOUD:
            continue
        if wall - last_loud > QUIET_S:
            onsets.append(wall)
        last_loud = wall
    return onsets


def pair(sent: list[float], heard: list[float]) -> tuple[list[float], int]:
    """(latency in ms of each sent onset heard within PAIR_WINDOW_S, how many were not)."""
    latencies, lost = [], 0
    for at in sent:
        match = next((h for h in heard if at <= h <= at + PAIR_WINDOW_S), None)
        if match is None:
            lost += 1
        else:
            latencies.append((match - at) * 1000)
    return latencies, lost


def summary(name: str, values: list[float], lost: int) -> str:
    if not values:
        return f"{name:<40} no burst arrived ({lost} sent)"
    ordered = sorted(values)
    return (
        f"{name:<40} p50 {statistics.median(ordered):5.0f} ms  p95 {p95(ordered):5.0f} ms  "
        f"max {ordered[-1]:5.0f} ms  ({len(ordered)} bursts, {lost} not heard)"
    )


def rig(port: int, outdir: Path, args: argparse.Namespace) -> list[str]:
    return ["/usr/bin/python3", str(RIG), str(port), str(outdir), "--codec", args.codec,
            "--latency-ms", str(args.latency_ms)]  # fmt: skip


def direct_reference(rtsp: str, args: argparse.Namespace) -> list[float]:
    """The agent's backchannel client fed in real time from this process, as a microphone
    would: 20 ms frames, each handed over when its audio is due; the wall time of each
    frame that starts a burst."""
    samples = burst_samples(args.reference_seconds, args.period, args.burst_ms / 1000, args.hz)
    pcm = (samples * 32767).astype(np.int16)
    frame_n = RATE // 50
    backchannel = Backchannel(rtsp, codecs=[args.codec])
    backchannel.open()
    resample = Resampler(backchannel.audio_format)
    onsets: list[float] = []
    period_frames = round(args.period * 50)
    started = time.monotonic()
    try:
        for index in range(len(pcm) // frame_n):
            due = started + index * 0.02
            time.sleep(max(0.0, due - time.monotonic()))
            chunk = pcm[index * frame_n : (index + 1) * frame_n]
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = RATE
            if index % period_frames == 0:
                onsets.append(time.time())
            for out in resample(frame):
                backchannel.write(out)
    finally:
        backchannel.close()
    return onsets


def pair_agent(url: str, rtsp: str, work: Path, server_env: dict[str, str]) -> tuple[Path, str]:
    """A household whose camera is the ONVIF rig, with talk through its backchannel."""
    return pair_live_agent(url, rtsp, work, server_env, "    talk: {kind: backchannel}\n")


def talk(url: str, household: str, wav: Path, seconds: float) -> dict[str, Any]:
    """Sign in, open live, press Talk for `seconds`; what the page's tap recorded."""
    with httpx.Client(base_url=url, timeout=30) as client:
        client.post("/api/v1/session", json={"email": RESIDENT, "password": PASSWORD})
        [device] = client.get(f"/api/v1/households/{household}/devices").json()
        cookie = client.cookies.jar
    flags = [
        "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
    ]  # fmt: skip
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=flags)
        context = browser.new_context()
        context.grant_permissions(["microphone"], origin=url)
        context.add_cookies([{"name": c.name, "value": c.value or "", "url": url} for c in cookie])
        page = context.new_page()
        page.add_init_script(TAP)
        page.goto(f"{url}/households/{household}/cameras/{device['id']}/live")
        page.wait_for_function(
            "() => document.getElementById('live').dataset.state === 'streaming'", timeout=30_000
        )
        pressed = time.time() * 1000
        page.click("#talk-button")
        page.wait_for_function("() => window.talkBench.talking !== null", timeout=15_000)
        page.wait_for_timeout(seconds * 1000)
        page.click("#talk-button")  # Stop
        result: dict[str, Any] = page.evaluate("() => window.talkBench")
        result["pressed"] = pressed
        result["status"] = page.inner_text("#talk-status")
        browser.close()
    return result


def run(args: argparse.Namespace, work: Path) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOORWARDEN_")}
    camera_port, reference_port, port = free_port(), free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    rtsp = f"rtsp://127.0.0.1:{camera_port}/cam"
    server_env = prepare_server(work, url)
    wav = write_wav(work / "bursts.wav", burst_samples(args.period, args.period,
                                                       args.burst_ms / 1000, args.hz))  # fmt: skip
    serve = [sys.executable, "-m", "doorwarden", "serve", "--port", str(port)]
    with (
        process(rig(camera_port, work / "camera", args), work / "camera.log", env, "ready"),
        process(serve, work / "server.log", server_env),
    ):
        wait_healthy(url)
        config, household = pair_agent(url, rtsp, work, server_env)
        agent = [sys.executable, "-m", "doorwarden", "agent", "run", "--config", str(config)]
        with process(agent, work / "agent.log", env):
            wait_for_line(work / "agent.log", "live.connected")
            # The reference while the agent runs (its video capture is part of the load).
            reference_rig = rig(reference_port, work / "reference", args)
            with process(reference_rig, work / "reference.log", env, "ready"):
                sent = direct_reference(f"rtsp://127.0.0.1:{reference_port}/cam", args)
                time.sleep(0.5)  # the last burst's way through the jitter buffer
            page = talk(url, household, wav, args.seconds)
            time.sleep(1.0)
    talking_ms = float(page["talking"])
    # Bursts the microphone made while the talk was open (before it, the audio is
    # dropped as stale by design: 0.2 s at most waits for the camera to answer).
    page_onsets = [t / 1000 for t in page["onsets"] if t >= talking_ms]
    heard = sink_onsets(work / "camera" / "buffers.jsonl")
    latencies, lost = pair(page_onsets, heard)
    reference, reference_lost = pair(sent, sink_onsets(work / "reference" / "buffers.jsonl"))
    print(f"camera: ONVIF backchannel {args.codec.upper()}, rig jitter buffer "
          f"{args.latency_ms} ms; bursts: {args.burst_ms:.0f} ms of {args.hz:.0f} Hz "
          f"every {args.period:g} s")  # fmt: skip
    print(f"Talk pressed -> talking: {talking_ms - page['pressed']:.0f} ms; "
          f"status after Stop: {page['status']!r}")  # fmt: skip
    print(f"onsets: {len(page_onsets)} in the page while talking ({page['blocks']} blocks "
          f"tapped), {len(heard)} at the camera")  # fmt: skip
    print(summary("direct RTP -> camera (reference)", reference, reference_lost))
    print(summary("microphone -> camera (chromium+server+agent)", latencies, lost))
    # In order: a latency that steps up and stays up is a backlog nobody sheds.
    print("each burst (ms):", " ".join(f"{x:.0f}" for x in latencies))
    if not latencies:
        print("no burst from the microphone reached the camera's backchannel")
        return 1
    if reference:
        added = statistics.median(latencies) - statistics.median(reference)
        ratio = statistics.median(latencies) / max(1.0, statistics.median(reference))
        print(f"browser + server + agent add (p50 difference): {added:.0f} ms "
              f"({ratio:.1f}x the reference)")  # fmt: skip
    verdict = "met" if p95(latencies) < TARGET_MS else "NOT met"
    print(f"target p95 < {TARGET_MS} ms: {verdict}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="how long to talk")
    parser.add_argument("--codec", choices=["pcmu", "pcma", "aac"], default="pcmu")
    parser.add_argument("--period", type=float, default=1.0, help="one burst every (s)")
    parser.add_argument("--burst-ms", type=float, default=150)
    parser.add_argument("--hz", type=float, default=1000)
    parser.add_argument("--latency-ms", type=int, default=50, help="the rig's jitter buffer")
    parser.add_argument("--reference-seconds", type=float, default=10)
    args = parser.parse_args()
    if args.burst_ms / 1000 + QUIET_S >= args.period:
        parser.error(f"--period must exceed the burst plus {QUIET_S} s of silence")
    with tempfile.TemporaryDirectory(prefix="talk-bench-") as tmp:
        sys.exit(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
