"""The SDP a camera answers (which media is the backchannel), and the RTP we send it."""

from __future__ import annotations

import struct

import av
import numpy as np
import pytest

from doorwarden.agent.talk import sdp
from doorwarden.agent.talk.output import TalkError
from doorwarden.agent.talk.rtp import AacEncoder, G711Encoder, RtpPacketiser, encoder_for

CAMERA_SDP = """v=0\r
o=- 1 1 IN IP4 192.0.2.10\r
s=Doorbell\r
t=0 0\r
a=control:rtsp://192.0.2.10/onvif1\r
m=video 0 RTP/AVP 96\r
a=rtpmap:96 H264/90000\r
a=control:trackID=1\r
a=recvonly\r
m=audio 0 RTP/AVP 0\r
a=control:trackID=2\r
a=recvonly\r
m=audio 0 RTP/AVP 8 0 97\r
a=rtpmap:97 MPEG4-GENERIC/16000/1\r
a=fmtp:97 streamtype=5; profile-level-id=15; mode=AAC-hbr; config=1408; SizeLength=13\r
a=control:trackID=3\r
a=sendonly\r
"""


def test_the_backchannel_is_the_sendonly_audio_in_the_codec_we_prefer() -> None:
    parsed = sdp.parse(CAMERA_SDP)
    assert parsed.control == "rtsp://192.0.2.10/onvif1"
    media, fmt = parsed.backchannel(["aac", "pcmu"]) or (None, None)
    assert media is not None and fmt is not None
    assert media.control == "trackID=3"  # not the camera's own microphone (recvonly)
    assert (fmt.codec, fmt.payload_type, fmt.clock_rate) == ("aac", 97, 16000)
    assert fmt.fmtp["sizelength"] == "13"  # names are case-insensitive
    _, g711 = parsed.backchannel(["pcma", "pcmu"]) or (None, None)
    assert g711 is not None
    assert (g711.codec, g711.payload_type, g711.clock_rate) == ("pcma", 8, 8000)  # static
    assert parsed.offered() == ["PCMA", "PCMU", "MPEG4-GENERIC"]


def test_no_sendonly_audio_means_no_backchannel() -> None:
    parsed = sdp.parse(CAMERA_SDP.replace("a=sendonly", "a=recvonly"))
    assert parsed.backchannel(["pcmu", "pcma", "aac"]) is None
    assert parsed.offered() == []


def test_control_urls_are_resolved_against_the_base() -> None:
    assert sdp.resolve("rtsp://h/cam/", "stream=1") == "rtsp://h/cam/stream=1"
    assert sdp.resolve("rtsp://h/cam", "stream=1") == "rtsp://h/cam/stream=1"
    assert sdp.resolve("rtsp://h/cam/", "rtsp://h/x/trackID=3") == "rtsp://h/x/trackID=3"
    assert sdp.resolve("rtsp://h/cam/", "*") == "rtsp://h/cam/"
    assert sdp.resolve("rtsp://h/cam/", None) == "rtsp://h/cam/"


def test_rtp_headers_count_and_mark() -> None:
    rtp = RtpPacketiser(8)
    first = rtp.packet(b"\xd5" * 160, 0, marker=True)
    second = rtp.packet(b"\xd5" * 160, 160, marker=False)
    v1, m1, seq1, ts1, ssrc1 = struct.unpack("!BBHII", first[:12])
    v2, m2, seq2, ts2, ssrc2 = struct.unpack("!BBHII", second[:12])
    assert (v1, v2) == (0x80, 0x80)
    assert (m1, m2) == (0x80 | 8, 8)  # marker on the first packet of a talk spurt only
    assert seq2 == (seq1 + 1) & 0xFFFF
    assert ts2 == (ts1 + 160) & 0xFFFFFFFF
    assert ssrc1 == ssrc2
    assert len(first) == 12 + 160


def tone(rate: int, seconds: float, fmt: str) -> av.AudioFrame:
    n = int(rate * seconds)
    wave = np.sin(2 * np.pi * 440 * np.arange(n) / rate) * 0.3
    data = (wave * 32767).astype(np.int16) if fmt == "s16" else wave.astype(np.float32)
    frame = av.AudioFrame.from_ndarray(data.reshape(1, -1), format=fmt, layout="mono")
    frame.sample_rate = rate
    return frame


def test_g711_is_cut_into_20_ms_payloads() -> None:
    encoder = G711Encoder("pcmu")
    payloads = list(encoder.encode(tone(8000, 0.5, "s16")))
    assert [len(p) for p, _ in payloads] == [160] * 25
    assert all(samples == 160 for _, samples in payloads)


def test_aac_access_units_carry_rfc3640_headers() -> None:
    fmt = sdp.parse(CAMERA_SDP).backchannel(["aac"])
    assert fmt is not None
    encoder = encoder_for(fmt[1])
    assert isinstance(encoder, AacEncoder)
    assert encoder.audio_format == ("fltp", "mono", 16000)
    payloads = list(encoder.encode(tone(16000, 1.0, "fltp")))
    assert len(payloads) >= 12  # 15.6 AUs of 1024 samples, less the encoder's delay
    for payload, samples in payloads:
        assert samples == 1024
        (header_bits, au_header) = struct.unpack("!HH", payload[:4])
        assert header_bits == 16
        assert au_header >> 3 == len(payload) - 4  # 13-bit size, then a 3-bit index of 0
        assert au_header & 0x7 == 0


def test_a_g711_offer_at_another_rate_is_refused() -> None:
    odd = sdp.Format(0, "pcmu", 16000, 1, {})
    with pytest.raises(TalkError, match="8 kHz"):
        encoder_for(odd)
