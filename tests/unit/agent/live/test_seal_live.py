"""End-to-end live view on the agent: the real link, taps and H.264 from a file, against
the loopback WebSocket server of test_link.py; what arrives is opened as a member's page
would (crypto/live.py LiveOpener), and must hold no plaintext fMP4."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import pytest

from doorwarden.agent.delivery.identity import DeviceIdentity
from doorwarden.agent.live.link import DELTA, INIT, KEYFRAME, NO_SNAPSHOT, LiveLink
from doorwarden.crypto.errors import NotARecipientError
from doorwarden.crypto.keys import RecipientKey, SigningKey, key_id
from doorwarden.crypto.live import COUNTER, LiveOpener
from tests.unit.agent.live.test_link import (
    CAMERAS,
    FakeServer,
    Message,
    feed_file,
    identity,
    make_link,
    server,
    video,
    wait_for,
)

__all__ = ["server", "video"]  # fixtures, used by name
BOXES = (b"ftyp", b"moov", b"moof", b"mdat")


def e2e(base: DeviceIdentity, *members: RecipientKey) -> DeviceIdentity:
    return dataclasses.replace(
        base, mode="e2e", recipients=[(key_id(m.public), m.public) for m in members]
    )


def stream(link: LiveLink, server: FakeServer, video: Path) -> list[Message]:
    """Start camera "back", play the file into it, and return what the server received."""
    link.start()
    try:
        server.next()  # hello
        started = threading.Event()

        def on_sample(index: int) -> None:
            if index == 15:
                server.send({"type": "start", "camera": "back"})
                wait_for(lambda: link.taps["back"].muxing or not link.taps["back"].running)
                started.set()

        feed_file(link, "back", video, each=on_sample)
        assert started.is_set()
        # the first message may leave the link's loop well after the last sample on a loaded
        # machine: wait for it, then take what follows until the link falls quiet
        return [server.next(timeout=30), *server.drain()]
    finally:
        link.stop()


def test_an_e2e_stream_is_ciphertext_that_each_member_opens_to_the_plain_stream(
    server: FakeServer, video: Path
) -> None:
    members, device = [RecipientKey.generate(), RecipientKey.generate()], SigningKey.generate()
    link = make_link(server, signing_key=device)
    link.seals.identity_of = lambda: e2e(identity(server.url), *members)
    received = stream(link, server, video)
    init, segment, *media = received
    message = json.loads(str(init))
    assert message["type"] == "init" and set(message["e2e"]) == {
        "session", "recipients", "device", "signature",
    }  # fmt: skip
    assert message["e2e"]["device"] == "device"
    payloads = [segment, *media]
    assert all(isinstance(p, bytes) for p in payloads)
    kinds = [bytes(p)[0] for p in payloads]
    assert kinds[:2] == [INIT, KEYFRAME] and set(kinds[2:]) <= {KEYFRAME, DELTA}
    for payload in payloads:  # nothing the relay sees is a box of the plain stream
        assert isinstance(payload, bytes)
        assert not any(box in payload for box in BOXES), payload[:40]
    counters = [COUNTER.unpack_from(bytes(p), 2)[0] for p in payloads]
    assert counters == list(range(len(payloads)))  # one per payload, the init first
    for member in members:
        opener = LiveOpener(message["e2e"], device.public, member)
        plain = [opener.open(bytes(p)[0], bytes(p)[2:]) for p in payloads]
        assert plain[0][4:8] == b"ftyp" and b"moov" in plain[0]
        assert all(p[4:8] == b"moof" and b"mdat" in p for p in plain[1:])
    with pytest.raises(NotARecipientError):
        LiveOpener(message["e2e"], device.public, RecipientKey.generate())


def test_the_standard_mode_stream_is_the_muxer_s_bytes(server: FakeServer, video: Path) -> None:
    link = make_link(server, signing_key=SigningKey.generate())
    init, segment, first, *_ = stream(link, server, video)
    assert "e2e" not in json.loads(str(init))
    assert bytes(segment)[2:].find(b"ftyp") == 4 and bytes(first)[6:10] == b"moof"


@pytest.mark.parametrize("why", ["no device key", "no member key"])
def test_an_e2e_stream_that_cannot_be_sealed_sends_an_error_and_no_video(
    server: FakeServer, video: Path, why: str
) -> None:
    member = RecipientKey.generate()
    if why == "no device key":
        link = make_link(server)
        link.seals.identity_of = lambda: e2e(identity(server.url), member)
        expected = "without its device key"
    else:
        link = make_link(server, signing_key=SigningKey.generate())
        link.seals.identity_of = lambda: e2e(identity(server.url))
        expected = "no member of the household has an end-to-end key"
    received = stream(link, server, video)
    assert all(isinstance(m, str) for m in received), "video left the agent"
    [error] = [json.loads(str(m)) for m in received]
    assert error["type"] == "error" and error["camera"] == "back"
    assert "end-to-end encrypted" in error["message"] and expected in error["message"]


def test_an_e2e_camera_sends_the_server_no_snapshot(server: FakeServer) -> None:
    link = make_link(server, signing_key=SigningKey.generate())
    link.seals.identity_of = lambda: e2e(identity(server.url), RecipientKey.generate())
    asked: list[object] = []
    link.handlers["snapshot"] = asked.append  # the settings handler's place
    link.start()
    try:
        server.next()
        wait_for(lambda: link.connected)
        server.send({"type": "snapshot", "camera": CAMERAS[0], "id": "ab" * 16})
        answer = json.loads(str(server.next()))
        assert answer == {"type": "snapshot_error", "camera": CAMERAS[0], "id": "ab" * 16,
                          "message": NO_SNAPSHOT}  # fmt: skip
        assert asked == []
        assert not link.send_binary(b"\x20\x00" + bytes(16) + b"\xff\xd8jpeg")
        assert server.drain() == []
    finally:
        link.stop()


def _split(received: list[Message]) -> list[tuple[dict[str, object], list[bytes]]]:
    """(init message, its payloads) for each stream in what the server received."""
    streams: list[tuple[dict[str, object], list[bytes]]] = []
    for message in received:
        if isinstance(message, str):
            body = json.loads(message)
            assert body["type"] == "init", body
            streams.append((body, []))
        else:
            streams[-1][1].append(message)
    return streams


@pytest.mark.parametrize("change", ["standard to e2e", "a member removed"])
def test_a_change_of_mode_or_members_restarts_the_stream_under_a_new_session(
    server: FakeServer, video: Path, change: str
) -> None:
    """The file has a keyframe every 10 frames: the switch at frame 22 takes effect at the
    keyframe of frame 30, with a new init; nothing after it is sealed the old way."""
    kept, removed, device = RecipientKey.generate(), RecipientKey.generate(), SigningKey.generate()
    base = identity(server.url)
    before = base if change == "standard to e2e" else e2e(base, kept, removed)
    current = {"identity": before}
    link = make_link(server, signing_key=device)
    link.seals.identity_of = lambda: current["identity"]
    link.start()
    try:
        server.next()  # hello

        def on_sample(index: int) -> None:
            if index == 15:
                server.send({"type": "start", "camera": "back"})
                wait_for(lambda: link.taps["back"].muxing)
            if index == 22:
                current["identity"] = e2e(base, kept)

        feed_file(link, "back", video, each=on_sample)
        received = server.drain()
    finally:
        link.stop()
    (first, old), (second, new) = _split(received)
    assert ("e2e" in first) is (change != "standard to e2e")
    opener = LiveOpener(second["e2e"], device.public, kept)
    plain = [opener.open(p[0], p[2:]) for p in new]
    assert plain[0][4:8] == b"ftyp" and plain[1][4:8] == b"moof" and new[1][0] == KEYFRAME
    assert len(new) > 5  # the stream went on under the new session
    with pytest.raises(NotARecipientError):  # the removed member's key opens nothing new
        LiveOpener(second["e2e"], device.public, removed)
    if change == "standard to e2e":
        assert old[0][2:][4:8] == b"ftyp"  # the clear stream before the switch...
        assert all(not any(box in p for box in BOXES) for p in new)  # ...and none after
