"""A live RTSP server on loopback for the capture tests (GStreamer's gst-rtsp-server).

Run with Debian's /usr/bin/python3, which has `gi` (the venv's python does not):

    /usr/bin/python3 tests/unit/agent/rtsp_server.py PORT [USER PASSWORD] [--audio aac|pcmu|pcma]

Serves a live test pattern (320x240, 10 fps, H.264, a keyframe every second) at
rtsp://127.0.0.1:PORT/cam, optionally behind Basic authentication, and prints "ready"
once listening. With --audio, a second stream: a 1 kHz tone, as AAC (48 kHz mono,
MPEG4-GENERIC) or G.711 (8 kHz mono, PCMU or PCMA). Debian packages: gstreamer1.0-rtsp,
gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-good (rtph264pay, rtpmp4gpay, mulaw),
gstreamer1.0-plugins-ugly (x264enc), gstreamer1.0-plugins-bad (voaacenc), python3-gi.
"""

from __future__ import annotations

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402 - after require_version

VIDEO = (
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=10/1"
    " ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10"
    " ! rtph264pay name=pay0 pt=96 config-interval=1"
)
TONE = "audiotestsrc is-live=true wave=sine freq=1000 volume=0.3 ! audio/x-raw,channels=1"
AUDIO = {
    "aac": f"{TONE},rate=48000 ! voaacenc bitrate=64000 ! rtpmp4gpay name=pay1 pt=97",
    "pcmu": f"{TONE},rate=8000 ! mulawenc ! rtppcmupay name=pay1",
    "pcma": f"{TONE},rate=8000 ! alawenc ! rtppcmapay name=pay1",
}
PIPELINE = f"( {VIDEO} )"  # the default: video only, as before audio existed


def pipeline(audio: str | None) -> str:
    return PIPELINE if audio is None else f"( {VIDEO} {AUDIO[audio]} )"


def main() -> None:
    args, audio = sys.argv[1:], None
    if "--audio" in args:
        at = args.index("--audio")
        audio = args[at + 1]
        del args[at : at + 2]
        if audio not in AUDIO:
            sys.exit(f"--audio: one of {', '.join(AUDIO)}")
    port = args[0]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(pipeline(audio))
    factory.set_shared(True)
    # TCP only: a client that tried UDP gets no stream, so the tests prove the transport.
    factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
    if len(args) == 3:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken.new()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args[1], args[2]), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions.new()
        permissions.add_permission_for_role("user", "media.factory.access", True)
        permissions.add_permission_for_role("user", "media.factory.construct", True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print("ready", flush=True)  # noqa: T201 - the parent waits for this line
    loop.run()


if __name__ == "__main__":
    main()
