"""A viewer's side of talk (docs/talk.md): what the live router hands a viewer's text and
binary messages to. It decides (policy `live:talk`), audits (`talk:start`, `talk:end`
in the household's trail, each in a session of its own: a talk outlives any request) and
turns a broken protocol into a TalkViolation, which closes only that viewer.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doorwarden import policy
from doorwarden.audit.service import Actor, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.crypto import strict_json
from doorwarden.crypto.errors import MalformedError
from doorwarden.live.relay import Out, Viewer
from doorwarden.live.talk import (
    CODECS,
    LATE_AUDIO_S,
    MAX_TALK_TEXT,
    BrowserState,
    Talks,
    TalkViolation,
    browser_message,
)

# Close codes for a viewer that broke the protocol (RFC 6455).
CLOSE_UNSUPPORTED = 1003  # media from a viewer who holds no talk; an unknown message
CLOSE_INVALID = 1007  # text that is not JSON
CLOSE_TOO_BIG = 1009  # a text message over MAX_TALK_TEXT


class TalkViewer:
    """One viewer's talk: at most one talk at a time, on the camera it watches."""

    def __init__(
        self,
        *,
        talks: Talks,
        viewer: Viewer,
        principal: policy.Principal,
        household_id: uuid.UUID,
        device_id: uuid.UUID,
        camera: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        ctx: RequestContext,
    ) -> None:
        self.talks = talks
        self.viewer = viewer
        self.principal = principal
        self.household_id = household_id
        self.device_id = device_id
        self.camera = camera
        self.sessionmaker = sessionmaker
        self.ctx = ctx
        self.refused_at = float("-inf")  # when a talk of this viewer last ended or was refused

    async def text(self, raw: str) -> None:
        message = _parse(raw)
        if message.get("action") == "stop":
            if (session := self.talks.held_by(self.viewer)) is None:
                self.say("ended", None)
                return
            await self.talks.stop(session, ended_by="talker", message="You stopped talking.")
            return
        codec = message.get("codec")
        if codec not in CODECS:
            reason = f"unknown talk codec {codec!r}"
            raise TalkViolation(CLOSE_UNSUPPORTED, reason, "talk-malformed")
        resource = policy.HouseholdResource(self.household_id)
        if not policy.decide(self.principal, policy.Action.talk, resource).allowed:
            self.say("failed", "You may not talk through this camera.")
            return
        await self.talks.start(
            self.device_id,
            self.camera,
            codec=str(codec),
            talker=self.viewer,
            say=self.say,
            record=self.record,
        )

    async def binary(self, data: bytes) -> None:
        if (session := self.talks.held_by(self.viewer)) is not None:
            await self.talks.audio(session, data)
        elif time.monotonic() - self.refused_at > LATE_AUDIO_S:
            # Viewers cannot inject frames into a stream others watch (docs/live-view.md).
            raise TalkViolation(CLOSE_UNSUPPORTED, "viewers cannot send media", "refused-media")
        # else: audio that was in flight when its talk ended or was refused: dropped

    async def end(self, ended_by: str, message: str, *, say: bool = True) -> None:
        """The viewer left, or may no longer watch: its talk, if any, ends."""
        if (session := self.talks.held_by(self.viewer)) is not None:
            await self.talks.stop(session, ended_by=ended_by, message=message, say=say)

    def say(self, state: BrowserState, message: str | None) -> None:
        if state in ("busy", "failed", "ended"):
            self.refused_at = time.monotonic()
        self.viewer.push(Out(browser_message(state, message)))

    async def record(self, tag: Tag, extra: dict[str, Any]) -> None:
        actor = Actor(user_id=self.principal.user_id, role=str(self.principal.role))
        async with self.sessionmaker() as db:
            record(
                db, tag=tag, actor=actor, ctx=self.ctx, household_id=self.household_id,
                target_type="device", target_id=self.device_id, extra=extra,
            )  # fmt: skip
            await db.commit()


def _parse(raw: str) -> dict[str, Any]:
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_TALK_TEXT:
        reason = f"text message too long (at most {MAX_TALK_TEXT} bytes)"
        raise TalkViolation(CLOSE_TOO_BIG, reason, "talk-malformed")
    try:
        message = strict_json.loads(raw, max_bytes=MAX_TALK_TEXT)
    except MalformedError as exc:
        raise TalkViolation(CLOSE_INVALID, "a text message must be JSON", "talk-malformed") from exc
    if not isinstance(message, dict) or message.get("type") != "talk":
        raise TalkViolation(CLOSE_UNSUPPORTED, "unknown message type", "talk-malformed")
    if message.get("action") not in ("start", "stop"):
        action = message.get("action")
        raise TalkViolation(CLOSE_UNSUPPORTED, f"unknown talk action {action!r}", "talk-malformed")
    return message
