"""The delivery loop with refusals that are not final (issue 23, item 3): deferred clips
wait on their own backoff while the next ones go, held clips stay until a person asks,
Retry-After is honoured, and an older agent's `refused` status is migrated. The server
is `httpx.MockTransport` (the network), everything of ours is real."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from typer.testing import CliRunner

from doorwarden.agent.config.models import UploadConfig
from doorwarden.agent.delivery.upload_status import STATUS_FILE, UploadStatus, iso
from doorwarden.agent.delivery.worker import Delivery
from doorwarden.cli.agent import agent_app
from tests.unit.agent.delivery.paired import FakeServer, error, paired


def _on_disk(delivery: Delivery) -> list[int]:
    return [p.sequence for p in delivery.sealed.pending()]


def test_a_deferred_clip_waits_while_the_next_ones_go(tmp_path: Path) -> None:
    agent = paired(tmp_path)
    agent.seal(3)
    server = FakeServer(agent.identity, {0: error(400, "bad_request")})
    with server.client() as client:
        delivery = agent.delivery(client)
        delivery.recover()
        before = datetime.now(UTC)
        delivery.step()
        assert server.offers == [0, 1, 2]
        assert _on_disk(delivery) == [0]  # kept, the next two delivered
        entry = delivery.status.deferred[0]
        assert entry["code"] == "bad_request" and entry["attempts"] == 1
        due = datetime.fromisoformat(entry["next_attempt"])
        assert before + timedelta(seconds=59) <= due <= datetime.now(UTC) + timedelta(seconds=61)
        assert delivery.backlog().deferred == 1

        delivery.step()  # not due yet: not offered
        assert server.offers == [0, 1, 2]

        # Its time comes (set in the past rather than waiting a minute); refused again, it
        # waits twice as long.
        delivery.status.deferred[0]["next_attempt"] = iso(datetime.now(UTC) - timedelta(seconds=1))
        delivery.step()
        assert server.offers == [0, 1, 2, 0]
        assert delivery.status.deferred[0]["attempts"] == 2
        due = datetime.fromisoformat(delivery.status.deferred[0]["next_attempt"])
        assert due >= datetime.now(UTC) + timedelta(seconds=119)

        # Then the server takes it: delivered, and no longer listed.
        del server.answers[0]
        delivery.status.deferred[0]["next_attempt"] = iso(datetime.now(UTC) - timedelta(seconds=1))
        delivery.step()
        assert _on_disk(delivery) == []
        assert delivery.status.deferred == {} and delivery.status.held == {}
        delivery.stop()
    saved = json.loads((agent.store.state_dir / STATUS_FILE).read_text())
    assert saved["deferred"] == {} and saved["last_delivered"]["sequence"] == 0


def test_a_held_clip_is_not_offered_again_until_a_person_asks(tmp_path: Path) -> None:
    agent = paired(tmp_path)
    agent.seal(2)
    server = FakeServer(agent.identity, {0: error(422, "hash_mismatch")})
    with server.client() as client:
        delivery = agent.delivery(client)
        delivery.recover()
        delivery.step()
        assert server.offers == [0, 1]
        assert delivery.status.held[0]["code"] == "hash_mismatch"
        delivery.stop()

        # Restarted: still held, never offered by itself (each offer would alert the owner).
        again = agent.delivery(client)
        again.recover()
        again.step()
        assert server.offers == [0, 1]
        assert again.backlog().held == 1

        # `doorwarden agent retry 0`: the next pass offers it; the server now takes it.
        result = CliRunner().invoke(
            agent_app, ["retry", "0", "--state", str(agent.store.state_dir)]
        )
        assert result.exit_code == 0, result.output
        del server.answers[0]
        again.step()
        assert server.offers == [0, 1, 0]
        assert _on_disk(again) == [] and again.status.held == {}
        again.stop()


def test_retry_after_sets_the_delay_capped_at_backoff_max(tmp_path: Path) -> None:
    agent = paired(tmp_path)
    agent.seal(1)
    full = error(507, "storage_full", {"retry-after": "60"})
    server = FakeServer(agent.identity, {0: full})
    with server.client() as client:
        capped = agent.delivery(client)  # backoff_max_s 0.4
        capped.recover()
        assert capped.step() == 0.4
        capped.stop()
        upload = UploadConfig(backoff_initial_s=1, backoff_max_s=300)
        patient = Delivery(agent.spool, agent.store, upload, client=client)
        patient.recover()
        assert patient.step() == 60.0  # the server's word, above the first backoff of 1 s
        assert patient.status.retrying is not None
        assert patient.status.held == {} and patient.status.deferred == {}
        patient.stop()
    assert server.offers == [0, 0]


def test_an_older_agents_refused_clips_are_migrated(tmp_path: Path) -> None:
    agent = paired(tmp_path)
    agent.seal(3)
    old = {
        "device_id": agent.identity.device_id,
        "stopped": None,
        "refused": {
            "0": {
                "code": "hash_mismatch",
                "message": "thumbnail",
                "at": "2026-01-01T00:00:00+00:00",
            },
            "1": {"code": "missing_recipient", "message": "key", "at": "2026-01-01T00:00:00+00:00"},
            "2": {"code": "http_422", "message": "?", "at": "2026-01-01T00:00:00+00:00"},
        },
        "retrying": None,
        "last_delivered": None,
    }
    (agent.store.state_dir / STATUS_FILE).write_text(json.dumps(old))
    status = UploadStatus.load(agent.store.state_dir, agent.identity.device_id)
    assert sorted(status.held) == [0] and sorted(status.deferred) == [1, 2]
    assert status.held[0]["since"] == "2026-01-01T00:00:00+00:00"
    assert not status.waiting(1) and not status.waiting(2)  # due at once

    server = FakeServer(agent.identity)
    with server.client() as client:
        delivery = agent.delivery(client)
        delivery.recover()
        delivery.step()
        assert server.offers == [1, 2]  # the held one stays
        result = CliRunner().invoke(
            agent_app, ["retry", "--all", "--state", str(agent.store.state_dir)]
        )
        assert result.exit_code == 0, result.output
        delivery.step()
        assert server.offers == [1, 2, 0]
        assert _on_disk(delivery) == []
        delivery.stop()
    saved = json.loads((agent.store.state_dir / STATUS_FILE).read_text())
    assert "refused" not in saved and saved["held"] == {} and saved["deferred"] == {}


def test_retry_needs_sequences_or_all(tmp_path: Path) -> None:
    agent = paired(tmp_path)
    state = str(agent.store.state_dir)
    assert CliRunner().invoke(agent_app, ["retry", "--state", state]).exit_code == 2
    assert CliRunner().invoke(agent_app, ["retry", "1", "--all", "--state", state]).exit_code == 2


def test_run_once_drains_with_a_deferred_clip_left(tmp_path: Path) -> None:
    agent = paired(tmp_path)
    agent.seal(2)
    server = FakeServer(agent.identity, {0: error(413, "payload_too_large")})
    with server.client() as client:
        delivery = agent.delivery(client)
        delivery.start()
        assert delivery.finish(timeout_s=20)  # nothing is due: finished, not stuck
    backlog = delivery.backlog()
    assert (backlog.sealed, backlog.held, backlog.deferred) == (0, 0, 1)


def test_a_network_error_is_retried_not_refused(tmp_path: Path) -> None:
    agent = paired(tmp_path)
    agent.seal(1)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with httpx.Client(transport=httpx.MockTransport(down)) as client:
        delivery = agent.delivery(client)
        delivery.recover()
        assert delivery.step() > 0
        assert delivery.status.retrying is not None
        assert delivery.status.refused == {}
        delivery.stop()
