"""A camera's ONVIF audio backchannel as a talk output (ONVIF Streaming Specification
§5.3, "Back channel connection").

The client DESCRIBEs with `Require: www.onvif.org/ver20/backchannel`; a camera that has
a speaker lists an audio media marked `a=sendonly` (we send, it receives) in its SDP. We
SETUP that media alone, over the RTSP connection itself (interleaved RTP on TCP: no
ports to open, no NAT), PLAY, and send RTP at the pace of the audio clock. Keep-alives
(GET_PARAMETER, or OPTIONS when the camera does not list it) hold the session; TEARDOWN
ends it.
"""

from __future__ import annotations

import contextlib
import threading
import time

import av
import structlog

from doorwarden.agent.capture.rtsp import redact_url
from doorwarden.agent.talk import sdp
from doorwarden.agent.talk.output import Pacer, TalkError
from doorwarden.agent.talk.rtp import Encoder, RtpPacketiser, encoder_for
from doorwarden.agent.talk.rtsp import Response, RtspConnection

log = structlog.get_logger("doorwarden.agent.talk.backchannel")

REQUIRE = {"Require": "www.onvif.org/ver20/backchannel"}
DEFAULT_SESSION_TIMEOUT_S = 60  # RFC 2326 §12.37
CODECS = ("pcmu", "pcma", "aac")


class Backchannel:
    """The talk output for one camera's backchannel at `url`."""

    def __init__(
        self, url: str, *, codecs: list[str] | None = None, timeout_s: float = 5.0
    ) -> None:
        self.codecs = list(codecs or CODECS)
        self.timeout_s = timeout_s
        self.rtsp = RtspConnection(url, timeout_s=timeout_s)
        self._stop = threading.Event()
        self._encoder: Encoder | None = None
        self._packetiser: RtpPacketiser | None = None
        self._pacer: Pacer | None = None
        self._channel = 0
        self._session: str | None = None
        self._keepalive = "GET_PARAMETER"
        self._keepalive_s = DEFAULT_SESSION_TIMEOUT_S / 2
        self._last_request = 0.0
        self._play_url = self.rtsp.url
        self.codec: str | None = None  # what the camera and we agreed on
        self.sent_packets = 0

    @property
    def audio_format(self) -> tuple[str, str, int]:
        if self._encoder is None:
            raise TalkError("the backchannel is not open")
        return self._encoder.audio_format

    # -- open ---------------------------------------------------------------------------

    def open(self) -> None:
        """Connect, DESCRIBE, SETUP and PLAY; TalkError with words for a resident."""
        rtsp = self.rtsp
        rtsp.connect()
        try:
            options = self._expect(rtsp.request("OPTIONS"), "OPTIONS")
            public = (options.header("Public") or "").upper()
            if public and "GET_PARAMETER" not in public:
                self._keepalive = "OPTIONS"
            described = self._expect(
                rtsp.request("DESCRIBE", headers={"Accept": "application/sdp", **REQUIRE}),
                "DESCRIBE",
            )
            session = sdp.parse(described.body.decode("utf-8", "replace"))
            chosen = session.backchannel(self.codecs)
            if chosen is None:
                offered = session.offered()
                if offered:
                    raise TalkError(
                        "the camera's speaker takes "
                        + ", ".join(offered)
                        + ", none of which this agent sends ("
                        + ", ".join(self.codecs).upper()
                        + ")"
                    )
                raise TalkError(
                    "the camera offers no audio backchannel (it has no speaker, or "
                    "two-way audio is off in its settings)"
                )
            media, fmt = chosen
            base = (
                described.header("Content-Base") or described.header("Content-Location") or rtsp.url
            )
            self._encoder = encoder_for(fmt)
            self._setup(sdp.resolve(base, media.control))
            play_url = sdp.resolve(base, session.control)
            self._expect(
                rtsp.request("PLAY", play_url, {"Session": self._session or "", **REQUIRE}),
                "PLAY",
            )
            self._play_url = play_url
        except TalkError:
            rtsp.close()
            raise
        self._last_request = time.monotonic()
        self._packetiser = RtpPacketiser(fmt.payload_type)
        self._pacer = Pacer(fmt.clock_rate, stop=self._stop)
        self.codec = fmt.codec
        log.info(
            "talk.backchannel_open",
            camera=redact_url(self.rtsp.secret_url),
            codec=fmt.codec,
            rate=fmt.clock_rate,
            keepalive_s=self._keepalive_s,
        )

    def _setup(self, url: str) -> None:
        transport = f"RTP/AVP/TCP;unicast;interleaved={self._channel}-{self._channel + 1}"
        response = self._expect(
            self.rtsp.request("SETUP", url, {"Transport": transport, **REQUIRE}), "SETUP"
        )
        session = response.header("Session")
        if not session:
            raise TalkError("the camera did not start a session for its speaker")
        self._session, _, params = session.partition(";")
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.lower() == "timeout" and value.isdigit() and int(value) > 0:
                # Half the timeout: a keep-alive late by a slow link still arrives in time.
                self._keepalive_s = max(0.5, int(value) / 2)
        answered = response.header("Transport") or ""
        for param in answered.split(";"):
            key, _, value = param.strip().partition("=")
            if key.lower() == "interleaved" and value.split("-")[0].isdigit():
                self._channel = int(value.split("-")[0])
        if "TCP" not in answered.upper() and answered:
            raise TalkError("the camera would not send its speaker's audio over TCP")

    def _expect(self, response: Response | None, method: str) -> Response:
        if response is None:  # only a request sent with wait=False has none
            raise TalkError(f"the camera did not answer {method}")
        if 200 <= response.status < 300:
            return response
        status = f"{response.status} {response.reason}".strip()
        if response.status == 401:
            raise TalkError(
                "the camera refused the user name or password for talk ("
                + status
                + "): check the talk URL's credentials"
            )
        if response.status == 551 or response.header("Unsupported"):
            raise TalkError(
                "the camera does not support the ONVIF audio backchannel (" + status + ")"
            )
        raise TalkError(f"the camera refused {method} for talk ({status})")

    # -- audio --------------------------------------------------------------------------

    def write(self, frame: av.AudioFrame | None) -> None:
        """Encode, packetise and send `frame` (None: flush the encoder), paced by the
        audio clock; keeps the session alive."""
        encoder, packetiser, pacer = self._encoder, self._packetiser, self._pacer
        if encoder is None or packetiser is None or pacer is None:
            raise TalkError("the backchannel is not open")
        for payload, samples in encoder.encode(frame):
            timestamp, spurt = pacer.next(samples)
            if self._stop.is_set():
                return
            # RFC 3640: the marker ends an access unit, and each packet holds a whole one;
            # RFC 3551 (G.711): the marker starts a talk spurt.
            marker = spurt or self.codec == "aac"
            packet = packetiser.packet(payload, timestamp, marker=marker)
            self.rtsp.send_interleaved(self._channel, packet)
            self.sent_packets += 1
        self.keep_alive()

    def keep_alive(self) -> None:
        """A GET_PARAMETER (or OPTIONS) when half the session's timeout has passed: RTP
        sent to the camera does not count as activity on every camera."""
        if self.rtsp.dead is not None:
            raise TalkError(f"the camera closed the connection ({self.rtsp.dead})")
        if time.monotonic() - self._last_request < self._keepalive_s:
            return
        self._last_request = time.monotonic()
        headers = {"Session": self._session or ""}
        self.rtsp.request(self._keepalive, self._play_url, headers, wait=False)

    def close(self) -> None:
        """The encoder's tail, TEARDOWN (briefly waiting for its answer), then close the
        connection."""
        if self._stop.is_set():
            return
        if self._encoder is not None and self.rtsp.dead is None:
            # The encoder's tail: the end of the last word (AAC holds two frames back).
            with contextlib.suppress(TalkError):
                self.write(None)
        self._stop.set()
        if self._session is not None and self.rtsp.dead is None:
            try:
                self.rtsp.request(
                    "TEARDOWN", self._play_url, {"Session": self._session}, timeout_s=0.5
                )
            except TalkError as exc:
                log.info("talk.teardown_unanswered", error=str(exc))
        self.rtsp.close()
