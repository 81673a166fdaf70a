"""An ONVIF camera with an audio backchannel on loopback, for the talk tests and the
talk-latency bench (GStreamer's GstRTSPOnvifServer, which most IP doorbells imitate).

Run with Debian's /usr/bin/python3, which has `gi` (the venv's python does not):

    /usr/bin/python3 tests/unit/agent/onvif_rtsp_server.py PORT OUTDIR [options]

    --codec pcmu|pcma|aac   what the backchannel takes (a=sendonly in the SDP; default pcmu)
    --mode backchannel      the camera takes audio (default)
    --mode refuse           an ONVIF server without backchannel: `Require:` is answered
                            551 Option not supported
    --mode no-backchannel   accepts the `Require:` header but its SDP has video only
    --auth basic|digest     with --user and --password
    --session-timeout S     the RTSP session's timeout (the client must keep it alive)
    --latency-ms MS         the receiving jitter buffer (default 50)

Serves rtsp://127.0.0.1:PORT/cam (a test pattern in H.264, as rtsp_server.py) and prints
"ready" once listening. What arrives on the backchannel is depayloaded, decoded and
recorded under OUTDIR, flushed as it comes:

* `audio.s16`: the decoded samples, signed 16-bit little-endian mono;
* `buffers.jsonl`: one line per decoded buffer, `{"wall": time.time() at arrival at the
  sink, "rate": Hz, "samples": n, "offset": first sample's index in audio.s16, "rms": 0..1}`
  (the bench takes a burst's onset as the first buffer whose rms crosses a threshold);
* `events.jsonl`: the RTSP requests seen, `{"wall": ..., "method": "DESCRIBE", ...}`, and
  `{"method": "closed"}` when a client's connection ends.

Debian packages: as rtsp_server.py, plus gstreamer1.0-plugins-base (mulaw/alaw in -good,
audioconvert), gstreamer1.0-libav (avdec_aac).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstApp, GstRtsp, GstRtspServer  # noqa: E402

VIDEO = (
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=10/1"
    " ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10"
    # A talk-only client sets up the backchannel alone: the video then has nowhere to go,
    # and its "not-linked" would put the media (backchannel included) in error; the tee
    # takes that in its stride.
    " ! tee allow-not-linked=true ! rtph264pay name=pay0 pt=96 config-interval=1"
)
# AAC-LC, 16 kHz, mono: AudioSpecificConfig 0x1408 (object 2, rate index 8, 1 channel).
# The fmtp fields must be typed strings: the SDP is made from these caps, and fields of
# other types are left out of its a=fmtp line.
AAC_CAPS = (
    "application/x-rtp,media=audio,payload=96,clock-rate=16000,encoding-name=MPEG4-GENERIC,"
    "encoding-params=(string)1,mode=(string)AAC-hbr,config=(string)1408,"
    "sizelength=(string)13,indexlength=(string)3,indexdeltalength=(string)3,"
    "streamtype=(string)5"
)
BACKCHANNEL = {
    "pcmu": (
        "application/x-rtp,media=audio,payload=0,clock-rate=8000,encoding-name=PCMU",
        "rtppcmudepay ! mulawdec",
    ),
    "pcma": (
        "application/x-rtp,media=audio,payload=8,clock-rate=8000,encoding-name=PCMA",
        "rtppcmadepay ! alawdec",
    ),
    "aac": (AAC_CAPS, "rtpmp4gdepay ! avdec_aac"),
}


class Recorder:
    """Writes what the backchannel's appsink gives, and the RTSP requests seen."""

    def __init__(self, outdir: Path) -> None:
        outdir.mkdir(parents=True, exist_ok=True)
        self.audio = (outdir / "audio.s16").open("ab")
        self.buffers = (outdir / "buffers.jsonl").open("a")
        self.events = (outdir / "events.jsonl").open("a")
        self.offset = 0
        self.lock = threading.Lock()

    def event(self, method: str, **extra: Any) -> None:
        with self.lock:
            self.events.write(json.dumps({"wall": time.time(), "method": method, **extra}) + "\n")
            self.events.flush()

    def on_sample(self, sink: GstApp.AppSink) -> Gst.FlowReturn:
        wall = time.time()
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.EOS
        rate = sample.get_caps().get_structure(0).get_value("rate")
        buffer = sample.get_buffer()
        ok, info = buffer.map(Gst.MapFlags.READ)
        if not ok:
            return Gst.FlowReturn.ERROR
        try:
            data = bytes(info.data)
        finally:
            buffer.unmap(info)
        count = len(data) // 2
        values = struct.unpack(f"<{count}h", data[: count * 2])
        rms = math.sqrt(sum(v * v for v in values) / count) / 32768 if count else 0.0
        line = {"wall": wall, "rate": rate, "samples": count, "offset": self.offset, "rms": rms}
        with self.lock:
            self.audio.write(data)
            self.audio.flush()
            self.buffers.write(json.dumps(line) + "\n")
            self.buffers.flush()
            self.offset += count
        return Gst.FlowReturn.OK


def backchannel_launch(codec: str) -> str:
    caps, decode = BACKCHANNEL[codec]
    # The element named depay_backchannel is what GstRTSPOnvifMediaFactory looks for: its
    # caps become the a=sendonly media of the SDP.
    return (
        f'( capsfilter name=depay_backchannel caps="{caps}" ! {decode} ! audioconvert'
        " ! audioresample ! audio/x-raw,format=S16LE,channels=1"
        " ! appsink name=recorder emit-signals=true sync=false async=false )"
    )


def configure_auth(server: Any, factory: Any, args: argparse.Namespace) -> None:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken.new()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
    if args.auth == "basic":
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
    else:
        auth.add_digest(args.user, args.password, token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    server.set_auth(auth)
    permissions = GstRtspServer.RTSPPermissions.new()
    permissions.add_permission_for_role("user", "media.factory.access", True)
    permissions.add_permission_for_role("user", "media.factory.construct", True)
    factory.set_permissions(permissions)


def watch_client(recorder: Recorder, args: argparse.Namespace, client: Any) -> None:
    methods = {
        "options-request": "OPTIONS",
        "describe-request": "DESCRIBE",
        "setup-request": "SETUP",
        "play-request": "PLAY",
        "teardown-request": "TEARDOWN",
        "get-parameter-request": "GET_PARAMETER",
        "set-parameter-request": "SET_PARAMETER",
    }
    for signal_name, method in methods.items():
        client.connect(signal_name, lambda _c, _ctx, m=method: recorder.event(m))
    client.connect("closed", lambda _c: recorder.event("closed"))
    if args.session_timeout:
        client.connect("new-session", lambda _c, session: session.set_timeout(args.session_timeout))
    if args.mode == "no-backchannel":
        # A camera that accepts the ONVIF requirement and offers no audio output anyway.
        client.connect("check-requirements", lambda _c, _ctx, _reqs: "")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port")
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--codec", choices=sorted(BACKCHANNEL), default="pcmu")
    parser.add_argument(
        "--mode", choices=["backchannel", "refuse", "no-backchannel"], default="backchannel"
    )
    parser.add_argument("--auth", choices=["basic", "digest"])
    parser.add_argument("--user", default="doorcam")
    parser.add_argument("--password", default="")
    parser.add_argument("--session-timeout", type=int, default=0)
    parser.add_argument("--latency-ms", type=int, default=50)
    args = parser.parse_args()

    Gst.init(None)
    recorder = Recorder(args.outdir)
    if args.mode == "no-backchannel":
        server = GstRtspServer.RTSPServer()
        factory = GstRtspServer.RTSPMediaFactory()
    else:
        server = GstRtspServer.RTSPOnvifServer()
        factory = GstRtspServer.RTSPOnvifMediaFactory()
        # Without the ONVIF media type the factory cannot build a media at all (400).
        factory.set_media_gtype(GstRtspServer.RTSPOnvifMedia.__gtype__)
        if args.mode == "backchannel":
            factory.set_backchannel_launch(backchannel_launch(args.codec))
    server.set_address("127.0.0.1")
    server.set_service(args.port)
    factory.set_launch(f"( {VIDEO} )")
    factory.set_shared(False)  # each client its own media: one talker's recorder each
    factory.set_latency(args.latency_ms)
    factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)

    def configured(_factory: Any, media: Any) -> None:
        sink = media.get_element().get_by_name("recorder")
        if sink is not None:
            sink.connect("new-sample", recorder.on_sample)

    factory.connect("media-configure", configured)
    if args.auth:
        configure_auth(server, factory, args)
    server.connect("client-connected", lambda _s, client: watch_client(recorder, args, client))
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{args.port}")
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    # Sessions whose client vanished without TEARDOWN expire on their timeout.
    GLib.timeout_add_seconds(1, lambda: server.get_session_pool().cleanup() >= 0)
    print("ready", flush=True)  # noqa: T201 - the parent waits for this line
    loop.run()


if __name__ == "__main__":
    main()
