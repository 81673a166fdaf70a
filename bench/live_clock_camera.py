"""A live RTSP camera whose every frame shows the wall clock, for the latency benchmark.

Run with Debian's /usr/bin/python3, which has `gi` (the venv's python does not):

    /usr/bin/python3 bench/live_clock_camera.py PORT [FPS]

Serves rtsp://127.0.0.1:PORT/cam: 640x360 H.264 (x264, zerolatency, a keyframe every
second, as a doorbell camera sends), TCP only. Each frame is drawn when it is captured:
the top band holds the low 32 bits of the Unix time in milliseconds as 32 black or white
blocks (20x40 px each, most significant bit first), which survive H.264 compression and
which a page reads back from a canvas. Prints "ready" once listening.
"""

from __future__ import annotations

import signal
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402 - after require_version

WIDTH, HEIGHT = 640, 360
BITS, BLOCK_W, BLOCK_H = 32, 20, 40
BACKGROUND = 96


def pipeline(fps: int) -> str:
    return (
        f"( appsrc name=clock is-live=true do-timestamp=true format=time "
        f"caps=video/x-raw,format=GRAY8,width={WIDTH},height={HEIGHT},framerate={fps}/1 "
        "! videoconvert ! video/x-raw,format=I420 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} "
        "! video/x-h264,profile=constrained-baseline "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


REST = bytes([BACKGROUND]) * (WIDTH * (HEIGHT - BLOCK_H))


def render(now_ms: int) -> bytes:
    value = now_ms & 0xFFFF_FFFF
    row = b"".join(
        (b"\xff" if value >> (BITS - 1 - i) & 1 else b"\x00") * BLOCK_W for i in range(BITS)
    )
    return row * BLOCK_H + REST


def main() -> None:
    port = sys.argv[1]
    fps = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(pipeline(fps))
    factory.set_shared(True)
    factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)

    def configure(_factory: object, media: GstRtspServer.RTSPMedia) -> None:
        source = media.get_element().get_child_by_name("clock")

        def push() -> bool:
            frame = render(int(time.time() * 1000))  # drawn at capture time: the "glass"
            result = source.emit("push-buffer", Gst.Buffer.new_wrapped(frame))
            return bool(result == Gst.FlowReturn.OK)

        GLib.timeout_add(round(1000 / fps), push)

    factory.connect("media-configure", configure)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
