"""A live RTSP server on loopback for the capture tests (GStreamer's gst-rtsp-server).

Run with Debian's /usr/bin/python3, which has `gi` (the venv's python does not):

    /usr/bin/python3 tests/unit/agent/rtsp_server.py PORT [USER PASSWORD]

Serves a live test pattern (320x240, 10 fps, H.264, a keyframe every second) at
rtsp://127.0.0.1:PORT/cam, optionally behind Basic authentication, and prints "ready"
once listening. Debian packages: gstreamer1.0-rtsp, gir1.2-gst-rtsp-server-1.0,
gstreamer1.0-plugins-good (rtph264pay), gstreamer1.0-plugins-ugly (x264enc), python3-gi.
"""

from __future__ import annotations

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402 - after require_version

PIPELINE = (
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=10/1"
    " ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10"
    " ! rtph264pay name=pay0 pt=96 config-interval=1 )"
)


def main() -> None:
    port = sys.argv[1]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE)
    factory.set_shared(True)
    # TCP only: a client that tried UDP gets no stream, so the tests prove the transport.
    factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
    if len(sys.argv) == 4:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken.new()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(sys.argv[2], sys.argv[3]), token)
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
