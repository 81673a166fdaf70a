"""The device health report, agent side (issue 23, decision 4): sent to a real HTTP
server on loopback that records what it receives (the server's own endpoint is tested
in tests/functional/devices/; tests/functional/agent/ sends to it)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from doorwarden.agent.delivery.uploader import http_client
from tests.unit.agent.delivery.paired import paired


class Recorder:
    """A device API on loopback: every clip is already verified, health reports kept."""

    def __init__(self, identity_json: dict[str, Any], health_status: int = 204) -> None:
        self.identity_json = identity_json
        self.health_status = health_status
        self.reports: list[dict[str, Any]] = []
        self.tokens: list[str] = []
        self.offer_status = 200


@contextmanager
def serve(recorder: Recorder) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any] | None = None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            body = recorder.identity_json
            self._answer(
                200, {"mode": body["mode"], "recipients": body["recipients"], "plan": body["plan"]}
            )

        def do_PUT(self) -> None:
            data = self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.path == "/api/v1/device/health":
                recorder.reports.append(json.loads(data))
                recorder.tokens.append(self.headers.get("authorization", ""))
                self._answer(recorder.health_status, None)
            elif recorder.offer_status == 200:
                self._answer(200, {"status": "verified", "received": 0})
            else:
                error = {"code": "hash_mismatch", "message": "no match", "details": {}}
                self._answer(recorder.offer_status, {"error": error})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _aware(value: str) -> bool:
    return datetime.fromisoformat(value).tzinfo is not None


def test_the_report_has_the_exact_shape_and_is_sent_when_it_changes(tmp_path: Path) -> None:
    agent = paired(tmp_path)
    recorder = Recorder(agent.identity.to_json())
    with serve(recorder) as url:
        agent = paired(tmp_path / "a", url)
        agent.seal(2)
        recorder.offer_status = 422  # both clips held: something the owner must see
        with http_client(5) as client:
            delivery = agent.delivery(client, heartbeat_s=3600)
            delivery.recover()
            delivery.step()
            delivery.step()  # nothing changed: nothing sent
    # The first report (before the uploads) and the one after the clips were held.
    assert len(recorder.reports) == 2
    first, report = recorder.reports
    assert first["held"] == [] and first["spool"]["pending_clips"] == 2
    assert set(report) == {"spool", "held", "deferred", "evicted"}
    spool = report["spool"]
    assert set(spool) == {
        "free_bytes",
        "total_bytes",
        "pending_clips",
        "pending_bytes",
        "disk_full",
    }
    assert all(type(spool[k]) is int and spool[k] >= 0 for k in spool if k != "disk_full")
    assert spool["free_bytes"] <= spool["total_bytes"]
    assert spool["pending_clips"] == 2 and spool["pending_bytes"] > 6000
    assert spool["disk_full"] is False
    assert [h["sequence"] for h in report["held"]] == [0, 1]
    assert all(set(h) == {"sequence", "code", "message", "since"} for h in report["held"])
    assert report["held"][0]["code"] == "hash_mismatch" and _aware(report["held"][0]["since"])
    assert report["deferred"] == [] and report["evicted"] == []
    assert set(recorder.tokens) == {f"Bearer {agent.identity.token}"}


def test_the_report_goes_with_each_heartbeat_even_unchanged(tmp_path: Path) -> None:
    agent = paired(tmp_path)
    recorder = Recorder(agent.identity.to_json())
    with serve(recorder) as url:
        agent = paired(tmp_path / "a", url)
        with http_client(5) as client:
            delivery = agent.delivery(client, heartbeat_s=0)
            delivery.recover()
            for _ in range(3):
                delivery.step()
    assert len(recorder.reports) == 3
    assert recorder.reports[0] == {**recorder.reports[2], "spool": recorder.reports[0]["spool"]}


@pytest.mark.parametrize("status", [404, 405])
def test_an_older_server_without_the_endpoint_is_not_asked_again(
    tmp_path: Path, status: int
) -> None:
    agent = paired(tmp_path)
    recorder = Recorder(agent.identity.to_json(), health_status=status)
    with serve(recorder) as url:
        agent = paired(tmp_path / "a", url)
        with http_client(5) as client:
            delivery = agent.delivery(client, heartbeat_s=0)
            delivery.recover()
            for _ in range(3):
                delivery.step()
            assert delivery.health.supported is False
    assert len(recorder.reports) == 1


def test_a_refused_report_is_tried_again_at_the_next_change(tmp_path: Path) -> None:
    agent = paired(tmp_path)
    recorder = Recorder(agent.identity.to_json(), health_status=422)
    with serve(recorder) as url:
        agent = paired(tmp_path / "a", url)
        with http_client(5) as client:
            delivery = agent.delivery(client, heartbeat_s=3600)
            delivery.recover()
            delivery.step()  # refused (422): logged at info, nothing else happens
            delivery.step()  # the same body: not sent again before the next heartbeat
            assert len(recorder.reports) == 1 and delivery.health.sent == 0
            recorder.health_status = 204
            recorder.offer_status = 422
            agent.record(1)  # sealed and offered by the next pass
            delivery.step()  # a held clip: a change, sent at once
    assert len(recorder.reports) == 2 and delivery.health.sent == 1
    assert [h["sequence"] for h in recorder.reports[-1]["held"]] == [0]


def test_a_report_the_server_could_not_take_goes_with_the_next_pass(tmp_path: Path) -> None:
    """A 503 (or a server unreachable) is not the report's fault: the change is not taken
    as told, and the next pass sends it, not the heartbeat a minute later."""
    agent = paired(tmp_path)
    recorder = Recorder(agent.identity.to_json(), health_status=503)
    with serve(recorder) as url:
        agent = paired(tmp_path / "a", url)
        with http_client(5) as client:
            delivery = agent.delivery(client, heartbeat_s=3600)
            delivery.recover()
            delivery.step()
            tried = len(recorder.reports)
            assert tried >= 1 and delivery.health.sent == 0
            recorder.health_status = 204
            delivery.step()  # unchanged, but never accepted: sent again now
            assert len(recorder.reports) > tried and delivery.health.sent == 1
            delivery.step()  # accepted: not sent again before the next heartbeat
    assert delivery.health.sent == 1
