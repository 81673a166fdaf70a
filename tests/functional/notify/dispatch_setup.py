"""What the rules, dispatch and e-mail tests share: settings with a real SMTP server and
loopback push allowed, a way to run the dispatch job by hand, and event rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from doorwarden.events.models import Event, EventKind, EventSource
from doorwarden.notify.models import Notification
from doorwarden.scheduler import run_now


async def dispatch(app: FastAPI) -> None:
    """Run the job (every batch) as the scheduler would, once a wake's turn is over."""
    await app.state.notify_dispatcher.idle()
    job = app.state.notify_dispatcher.job
    while (await run_now(app.state.sessionmaker, job)).more:
        pass


async def add_event(
    app: FastAPI,
    household_id: uuid.UUID,
    device_id: uuid.UUID,
    kind: EventKind,
    at: datetime,
    clip_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """A person or motion event as the clip job makes them (a ring comes over HTTP)."""
    async with app.state.sessionmaker.begin() as db:
        event = Event(
            id=uuid.uuid4(),
            household_id=household_id,
            device_id=device_id,
            camera="front",
            kind=kind,
            occurred_at=at,
            received_at=at,
            source=EventSource.detector if kind is not EventKind.ring else EventSource.cli,
            agent_event_id=None if kind is not EventKind.ring else uuid.uuid4().hex,
            clip_id=clip_id,
        )
        db.add(event)
        return event.id


async def ring(camera_client: httpx.AsyncClient, at: datetime) -> uuid.UUID:
    response = await camera_client.post(
        "/api/v1/device/events",
        json={
            "id": uuid.uuid4().hex,
            "camera": "front",
            "kind": "ring",
            "at": at.isoformat(),
            "source": "cli",
        },
    )
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["event_id"])


async def notifications_of(app: FastAPI, user_id: uuid.UUID) -> list[Notification]:
    async with app.state.sessionmaker() as db:
        rows = await db.scalars(
            select(Notification)
            .where(Notification.user_id == user_id)
            .order_by(Notification.occurred_at)
        )
        return list(rows)


def settings_overrides(smtp_port: int | None) -> dict[str, Any]:
    return {
        "development": True,  # loopback push endpoints
        "notify_interval_s": 0,  # the tests run the job (a ring's wake still may)
        "smtp_host": "127.0.0.1" if smtp_port else None,
        "smtp_port": smtp_port or 25,
        "smtp_starttls": False,
        "smtp_timeout_s": 5,
    }
