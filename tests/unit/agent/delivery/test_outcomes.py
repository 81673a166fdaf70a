"""The agent outcome table (issue 23, decision 3), row by row: a real sealed clip is
offered through the real uploader, and the server's answer comes from
`httpx.MockTransport` (the transport is the network, not our code)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from doorwarden.agent.delivery.outcomes import OutcomeKind, deferral_delay
from doorwarden.agent.delivery.uploader import Uploader
from tests.unit.agent.delivery.paired import error, paired

R, S, L, P, H, D = (
    OutcomeKind.retry,
    OutcomeKind.stopped,
    OutcomeKind.live_only,
    OutcomeKind.replayed,
    OutcomeKind.held,
    OutcomeKind.deferred,
)
TABLE = [
    # retry: the server's or the network's trouble, never the clip's
    (500, "internal_error", R),
    (502, "http_502", R),
    (503, "storage_unavailable", R),
    (503, "database_unavailable", R),
    (507, "storage_full", R),
    (404, "not_found", R),
    (408, "request_timeout", R),
    (425, "too_early", R),
    (429, "rate_limited", R),
    (409, "incomplete", R),
    (409, "wrong_offset", R),
    # stopped: the device is refused; every later clip would be too
    (401, "unauthorized", S),
    (401, "device_revoked", S),
    (403, "forbidden", S),
    (409, "chain_fork", S),
    (409, "chain_broken", S),
    (422, "bad_signature", S),
    (422, "wrong_device", S),
    (403, "live_only", L),
    (409, "replayed", P),
    # held: the camera's own data does not match its own signature
    (422, "hash_mismatch", H),
    (422, "chunk_tampered", H),
    (422, "truncated", H),
    (422, "malformed_manifest", H),
    (422, "sequence_mismatch", H),
    # deferred: every other refusal of this one clip
    (422, "missing_recipient", D),
    (422, "validation_error", D),
    (422, "data_refused", D),
    (400, "bad_request", D),
    (413, "payload_too_large", D),
    (415, "unsupported_media_type", D),
    (409, "something_new", D),
    (410, "gone", D),
]


@pytest.mark.parametrize(("status", "code", "kind"), TABLE)
def test_each_answer_is_classified_per_the_table(
    tmp_path: Path, status: int, code: str, kind: OutcomeKind
) -> None:
    agent = paired(tmp_path)
    sealed = agent.seal(1)
    [paths] = sealed.pending()

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":  # a refresh after live_only / missing_recipient
            body = agent.identity.to_json()
            return httpx.Response(
                200,
                json={"mode": "standard", "recipients": body["recipients"], "plan": body["plan"]},
            )
        return error(status, code)

    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        outcome = Uploader(agent.identity, sealed, client, 4096).upload_one(paths)
    assert (outcome.kind, outcome.status, outcome.code) == (kind, status, code)
    # Only `replayed` (verified on the server once, deleted since) lets the clip go.
    assert paths.manifest.exists() == (kind is not OutcomeKind.replayed)
    assert paths.clip.exists() == (kind is not OutcomeKind.replayed)


@pytest.mark.parametrize(
    ("status", "headers", "details", "expected"),
    [
        (503, {"retry-after": "30"}, {}, 30.0),
        (507, {}, {"retry_after": 60}, 60.0),
        (429, {"retry-after": "7"}, {}, 7.0),
        (429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, {}, None),  # a date: backoff
        (503, {"retry-after": "999999"}, {}, 3600.0),  # not believed past an hour
        (500, {"retry-after": "30"}, {}, None),  # only 429, 503 and 507 say when
    ],
)
def test_retry_after_is_read_from_the_header_or_the_body(
    tmp_path: Path,
    status: int,
    headers: dict[str, str],
    details: dict[str, int],
    expected: float | None,
) -> None:
    agent = paired(tmp_path)
    sealed = agent.seal(1)
    body = {"error": {"code": "x", "message": "busy", "details": details}}
    transport = httpx.MockTransport(lambda _: httpx.Response(status, json=body, headers=headers))
    with httpx.Client(transport=transport) as client:
        outcome = Uploader(agent.identity, sealed, client, 4096).upload_one(sealed.pending()[0])
    assert outcome.kind is OutcomeKind.retry
    assert outcome.retry_after == expected


def test_a_local_copy_that_does_not_match_its_manifest_is_held(tmp_path: Path) -> None:
    agent = paired(tmp_path)
    sealed = agent.seal(1)
    [paths] = sealed.pending()
    with paths.clip.open("r+b") as f:
        f.truncate(100)
    transport = httpx.MockTransport(lambda _: pytest.fail("nothing is sent"))
    with httpx.Client(transport=transport) as client:
        outcome = Uploader(agent.identity, sealed, client, 4096).upload_one(paths)
    assert (outcome.kind, outcome.code) == (OutcomeKind.held, "local_size_mismatch")
    assert paths.manifest.exists()


def test_a_deferred_clip_waits_a_minute_doubling_to_an_hour() -> None:
    assert [deferral_delay(n) for n in range(1, 9)] == [
        60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 3600.0, 3600.0,
    ]  # fmt: skip
    assert deferral_delay(10_000) == 3600.0
