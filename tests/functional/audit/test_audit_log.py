"""The tamper-evident audit log on a real server: appending, the public API, proofs, and
`doorwarden verify-log` catching every kind of tampering.

Tampering is done the way an insider with database access would: SQL on the tables. The
strongest insider also holds the log key (it is derived from the server's secret) and
re-signs a rewritten log; only a verifier that saved an earlier checkpoint can catch
that, and the tests show it does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, select, text, update
from typer.testing import CliRunner

from doorwarden.audit.log import LogSigner
from doorwarden.audit.log_models import LogCheckpoint, LogLeaf, LogNode
from doorwarden.audit.models import AuditEvent
from doorwarden.audit.service import SYSTEM, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.audit.tasks import run_append
from doorwarden.cli.app import app as cli
from doorwarden.config import Settings
from doorwarden.formats import merkle
from doorwarden.formats.checkpoint import log_key, open_checkpoint
from doorwarden.roles import Role
from doorwarden.verify.log import HttpSource, SavedState, VerifyFailed, verify_log
from tests.factories import Factory
from tests.live_server import running_server


@pytest.fixture
async def url(settings: Settings) -> AsyncIterator[str]:
    with running_server(settings) as base:
        yield base


def signer(app: FastAPI) -> LogSigner:
    found: LogSigner = app.state.log_signer
    return found


async def make_events(factory: Factory, households: int = 3) -> None:
    owner = await factory.user()
    for n in range(households):
        await factory.household(owner, f"Home {n}")


async def append(app: FastAPI) -> int:
    return await run_append(app.state.sessionmaker, signer(app))


async def sql(app: FastAPI, *statements: Any) -> None:
    async with app.state.sessionmaker.begin() as db:
        for statement in statements:
            await db.execute(statement)


def check(url: str, app: FastAPI, saved: SavedState | None = None) -> SavedState:
    with HttpSource(url) as source:
        report = verify_log(source, signer(app).key, saved=saved, origin=signer(app).origin)
    return report.state


async def checked(url: str, app: FastAPI, saved: SavedState | None = None) -> SavedState:
    return await asyncio.to_thread(check, url, app, saved)


async def refused(url: str, app: FastAPI, saved: SavedState | None = None) -> str:
    with pytest.raises(VerifyFailed) as failure:
        await checked(url, app, saved)
    return str(failure.value)


async def test_every_event_is_appended_once_in_order_and_proves_its_inclusion(
    app: FastAPI, factory: Factory, url: str, client: httpx.AsyncClient
) -> None:
    await make_events(factory)
    appended = await append(app)
    assert appended > 0
    assert await append(app) == 0  # nothing twice
    async with app.state.sessionmaker() as db:
        events = (await db.scalars(select(AuditEvent).order_by(AuditEvent.log_index))).all()
    assert [e.log_index for e in events] == list(range(appended))
    note = (await client.get("/api/v1/log/checkpoint")).content
    checkpoint = open_checkpoint(note, signer(app).key, origin=signer(app).origin)
    assert checkpoint.size == appended
    body = (await client.get("/api/v1/log/entries", params={"start": 0, "end": 1000})).json()
    leaves = [e["leaf"] for e in body["entries"]]
    for index, leaf in enumerate(leaves):
        entry = json.loads(leaf)
        assert entry["event"] == str(events[index].id) and entry["tag"] == events[index].tag
        # Public entries: identifiers and hashes, never where a request came from.
        assert not {"client_address", "user_agent", "request_id", "extra"} & entry.keys()
        assert events[index].client_address is None or events[index].client_address not in leaf
        proof = (
            await client.get(
                "/api/v1/log/proofs/inclusion", params={"index": index, "size": appended}
            )
        ).json()["proof"]
        assert merkle.verify_inclusion(
            merkle.leaf_hash(leaf.encode()), index, appended, [bytes.fromhex(h) for h in proof],
            checkpoint.root,
        )  # fmt: skip
    await checked(url, app)


async def test_the_verifier_checks_incrementally_from_a_saved_state(
    app: FastAPI, factory: Factory, url: str, tmp_path: Path
) -> None:
    await make_events(factory)
    await append(app)
    vkey = signer(app).key.verifier()
    state = tmp_path / "state.json"
    first = CliRunner().invoke(cli, ["verify-log", url, "--key", vkey, "--state", str(state)])
    assert first.exit_code == 0, first.output
    size = json.loads(state.read_text())["checkpoint"].split("\n")[1]
    await make_events(factory, households=2)
    await append(app)
    second = CliRunner().invoke(cli, ["verify-log", url, "--key", vkey, "--state", str(state)])
    assert second.exit_code == 0, second.output
    assert f"checked entries {size}.." in second.output  # only what is new


async def test_a_verifier_pins_the_key(app: FastAPI, factory: Factory, url: str) -> None:
    await make_events(factory)
    await append(app)
    other, _ = log_key(b"another instance's secret", signer(app).origin)
    result = CliRunner().invoke(cli, ["verify-log", url, "--key", other.verifier()])
    assert result.exit_code == 1 and "FAILED" in result.output


async def test_an_edited_entry_is_caught(app: FastAPI, factory: Factory, url: str) -> None:
    await make_events(factory)
    await append(app)
    await sql(
        app,
        update(LogLeaf)
        .where(LogLeaf.index == 1)
        .values(leaf=text("replace(leaf, 'household:create', 'household:update')")),
    )
    assert "edited, deleted, inserted or moved" in await refused(url, app)


async def test_a_deleted_entry_is_caught(app: FastAPI, factory: Factory, url: str) -> None:
    await make_events(factory)
    await append(app)
    await sql(app, delete(LogLeaf).where(LogLeaf.index == 2))
    message = await refused(url, app)
    assert "missing" in message or "indexes" in message


async def test_reordered_entries_are_caught(app: FastAPI, factory: Factory, url: str) -> None:
    await make_events(factory)
    await append(app)
    await sql(
        app,
        update(LogLeaf).where(LogLeaf.index == 1).values(index=-1),
        update(LogLeaf).where(LogLeaf.index == 2).values(index=1),
        update(LogLeaf).where(LogLeaf.index == -1).values(index=2),
    )
    assert "edited, deleted, inserted or moved" in await refused(url, app)


async def _forget_log_after(app: FastAPI, size: int) -> None:
    """Drop every entry from `size` on, with its nodes and checkpoints, as a restored
    older copy of the database (or an insider rewriting history) would have it."""
    await sql(
        app,
        delete(LogLeaf).where(LogLeaf.index >= size),
        delete(LogCheckpoint).where(LogCheckpoint.size > size),
        update(AuditEvent).where(AuditEvent.log_index >= size).values(log_index=None),
    )
    async with app.state.sessionmaker.begin() as db:
        nodes = (await db.execute(select(LogNode.level, LogNode.index))).all()
        stale = [(lv, ix) for lv, ix in nodes if (ix + 1) << lv > size]
        for level, index in stale:
            await db.execute(delete(LogNode).where(LogNode.level == level, LogNode.index == index))


async def test_a_rolled_back_database_is_caught(app: FastAPI, factory: Factory, url: str) -> None:
    await make_events(factory)
    older = await append(app)
    await make_events(factory)
    await append(app)
    saved = await checked(url, app)
    await _forget_log_after(app, older)  # the database restored from the older copy
    assert "rolled back" in await refused(url, app, saved)


async def test_a_fork_is_caught_even_when_the_insider_re_signs(
    app: FastAPI, factory: Factory, url: str
) -> None:
    await make_events(factory)
    await append(app)
    saved = await checked(url, app)
    size = int(saved.note.split("\n")[1])
    # The insider rewrites the tail: forgets the last entries, edits an event, appends
    # again (with the log key, so the new checkpoints are validly signed), and adds more.
    await _forget_log_after(app, size - 2)
    await sql(
        app, update(AuditEvent).where(AuditEvent.log_index.is_(None)).values(tag="account:login")
    )
    await make_events(factory, households=1)
    await append(app)
    assert "forked" in await refused(url, app, saved)
    # Without the saved state the rewritten log looks consistent: the state is the point.
    await checked(url, app)


async def test_a_same_size_rewrite_is_caught(app: FastAPI, factory: Factory, url: str) -> None:
    await make_events(factory)
    await append(app)
    saved = await checked(url, app)
    size = int(saved.note.split("\n")[1])
    await _forget_log_after(app, size - 1)
    await sql(
        app, update(AuditEvent).where(AuditEvent.log_index.is_(None)).values(tag="account:login")
    )
    await append(app)  # the same size again, another root, validly signed
    assert "forked" in await refused(url, app, saved)


async def test_bad_requests_get_clear_errors(
    app: FastAPI, factory: Factory, client: httpx.AsyncClient
) -> None:
    await make_events(factory)
    size = await append(app)
    for path, params in [
        ("/api/v1/log/entries", {"start": 5, "end": 2}),
        ("/api/v1/log/entries", {"start": 0, "end": 5000}),
        ("/api/v1/log/proofs/inclusion", {"index": size, "size": size}),
        ("/api/v1/log/proofs/inclusion", {"index": 0, "size": size + 1}),
        ("/api/v1/log/proofs/consistency", {"first": 0, "second": size}),
        ("/api/v1/log/proofs/consistency", {"first": size, "second": size - 1}),
        ("/api/v1/log/proofs/inclusion", {"index": -1, "size": size}),
    ]:
        response = await client.get(path, params=params)
        assert response.status_code in (400, 422), (path, params, response.text)
        assert response.json()["error"]["message"]


async def test_the_log_is_public_but_carries_no_personal_data(
    app: FastAPI, factory: Factory, client: httpx.AsyncClient
) -> None:
    admin = await factory.user(Role.operator_admin)
    await factory.user(email="someone-private@example.org")
    await factory.agency(admin)
    await append(app)
    body = (await client.get("/api/v1/log/entries", params={"start": 0, "end": 1000})).text
    assert "someone-private" not in body and "198.51.100" not in body
    assert (await client.get("/api/v1/log/key")).text == signer(app).key.verifier()


async def test_an_exported_log_verifies_offline(
    app: FastAPI,
    factory: Factory,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await make_events(factory)
    await append(app)
    for name, value in {
        "DOORWARDEN_DATABASE_URL": settings.effective_database_url,
        "DOORWARDEN_SECRET_KEY": settings.secret_key.get_secret_value(),
        "DOORWARDEN_PUBLIC_BASE_URL": settings.public_base_url,
        "DOORWARDEN_DATA_DIR": str(settings.data_dir),
    }.items():
        monkeypatch.setenv(name, value)
    export = tmp_path / "log.json"
    runner = CliRunner()
    written = await asyncio.to_thread(runner.invoke, cli, ["log", "export", str(export)])
    assert written.exit_code == 0, written.output
    vkey = signer(app).key.verifier()
    ok = await asyncio.to_thread(runner.invoke, cli, ["verify-log", str(export), "--key", vkey])
    assert ok.exit_code == 0, ok.output
    data = json.loads(export.read_text())
    data["entries"][0] = data["entries"][0].replace("household", "houseHOLD")
    export.write_text(json.dumps(data))
    bad = await asyncio.to_thread(runner.invoke, cli, ["verify-log", str(export), "--key", vkey])
    assert bad.exit_code == 1 and "FAILED" in bad.output


async def test_events_with_any_details_are_appended(
    app: FastAPI, factory: Factory, url: str
) -> None:
    """Details are free-form JSON (a live session's duration is a float): the commitment
    takes them as they are, and the appender never stalls on one."""
    async with app.state.sessionmaker.begin() as db:
        record(
            db, tag=Tag.live_end, actor=SYSTEM, ctx=RequestContext(client_address="203.0.113.9"),
            extra={"duration_s": 12.5, "camera": "Porte d'entrée", "nested": {"a": [1, None]}},
        )  # fmt: skip
    assert await append(app) == 1
    async with app.state.sessionmaker() as db:
        leaf = await db.scalar(select(LogLeaf.leaf))
    assert leaf is not None and "203.0.113.9" not in leaf and "12.5" not in leaf
    await checked(url, app)


async def test_an_owner_verifies_their_households_entries(
    app: FastAPI, factory: Factory, url: str, tmp_path: Path
) -> None:
    owner, shared, neighbour = await factory.user(), await factory.user(), await factory.user()
    home = await factory.household(owner)
    await factory.share(home, owner, shared)
    await factory.household(neighbour, "Next door")
    await append(app)
    owner_client = await factory.signed_in(owner)
    response = await owner_client.get(f"/api/v1/households/{home}/log-entries")
    assert response.status_code == 200, response.text
    entries = response.json()
    async with app.state.sessionmaker() as db:
        expected = await db.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.household_id == home)
        )
    assert len(entries) == expected and expected >= 2  # created, member added
    assert all(json.loads(e["leaf"])["household"] == str(home) for e in entries)
    saved = tmp_path / "entries.json"
    saved.write_text(json.dumps(entries))
    vkey = signer(app).key.verifier()
    args = ["verify-log", url, "--key", vkey, "--entries", str(saved)]
    ok = await asyncio.to_thread(CliRunner().invoke, cli, args)
    assert ok.exit_code == 0, ok.output
    assert f"ok: {expected} entries unchanged" in ok.output
    # An insider edits what the event says (where the request came from) after the fact.
    await sql(
        app,
        update(AuditEvent)
        .where(AuditEvent.household_id == home)
        .values(client_address="192.0.2.66"),
    )
    edited = (await owner_client.get(f"/api/v1/households/{home}/log-entries")).json()
    saved.write_text(json.dumps(edited))
    caught = await asyncio.to_thread(CliRunner().invoke, cli, args)
    assert caught.exit_code == 1 and "do not match what was logged" in caught.output
    # Only the owner gets the entries with their private halves.
    for other in (shared, neighbour):
        client = await factory.signed_in(other)
        refused = await client.get(f"/api/v1/households/{home}/log-entries")
        assert refused.status_code in (403, 404), refused.text
        await client.aclose()
    await owner_client.aclose()


async def test_the_activity_page_shows_log_positions_and_how_to_check_them(
    app: FastAPI, factory: Factory
) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    client = await factory.signed_in(owner)
    before = (await client.get(f"/households/{home}/audit")).text
    assert "pending" in before  # not in the log yet
    await append(app)
    page = (await client.get(f"/households/{home}/audit")).text
    async with app.state.sessionmaker() as db:
        index = await db.scalar(
            select(AuditEvent.log_index).where(AuditEvent.household_id == home).limit(1)
        )
    assert f"#{index}" in page
    assert signer(app).key.verifier() in page
    assert f"/api/v1/households/{home}/log-entries" in page
    await client.aclose()


async def test_verify_log_refuses_bad_input_clearly(
    app: FastAPI, factory: Factory, url: str, tmp_path: Path
) -> None:
    await make_events(factory)
    await append(app)
    vkey = signer(app).key.verifier()
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(cli, ["verify-log", *args])

    malformed_key = await asyncio.to_thread(run, url, "--key", "not a key")
    assert malformed_key.exit_code == 1 and "FAILED" in malformed_key.output
    damaged = tmp_path / "state.json"
    damaged.write_text('{"checkpoint": "x", "edge": 3}')
    bad_state = await asyncio.to_thread(run, url, "--key", vkey, "--state", str(damaged))
    assert bad_state.exit_code == 1 and "FAILED" in bad_state.output
    not_entries = tmp_path / "entries.json"
    not_entries.write_text('{"index": 0}')
    bad_entries = await asyncio.to_thread(run, url, "--key", vkey, "--entries", str(not_entries))
    assert bad_entries.exit_code == 1 and "FAILED" in bad_entries.output
    unreachable = await asyncio.to_thread(run, "http://127.0.0.1:9", "--key", vkey)
    assert unreachable.exit_code == 2 and "could not check" in unreachable.output
    not_export = await asyncio.to_thread(run, str(not_entries), "--key", vkey)
    assert not_export.exit_code == 1 and "not a log export" in not_export.output
