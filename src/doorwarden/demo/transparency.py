"""What the public sees change: the transparency report's figures (this year's, from
GET /api/v1/transparency/report, as anyone can read them) and the audit log's signed
checkpoint (GET /api/v1/log/checkpoint, checked against GET /api/v1/log/key)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from doorwarden.formats.checkpoint import Checkpoint, NoteKey, open_checkpoint

REPORT = "/api/v1/transparency/report"


@dataclass(frozen=True)
class Figures:
    """The report's counts the scenario changes; `available` False when this server has
    no report route (then every count is 0)."""

    available: bool
    requests: dict[str, dict[str, int]] = field(default_factory=dict)  # by kind
    packages: int = 0
    clips_disclosed: int = 0
    households_disclosed: int = 0
    notices_delivered: int = 0
    community_clips_shared: int = 0

    def get(self, kind: str, measure: str) -> int:
        return self.requests.get(kind, {}).get(measure, 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "requests": self.requests,
            "packages": self.packages,
            "clips_disclosed": self.clips_disclosed,
            "households_disclosed": self.households_disclosed,
            "notices_delivered": self.notices_delivered,
            "community_clips_shared": self.community_clips_shared,
        }

    def changes_since(self, before: Figures) -> list[str]:
        def count(now: int, was: int) -> str:
            return f"{now} (+{now - was})" if now != was else str(now)

        def kind(name: str, measure: str) -> str:
            return count(self.get(name, measure), before.get(name, measure))

        return [
            "this year's transparency report now counts:",
            f"  warrants {kind('warrant', 'total')}, narrowed {kind('warrant', 'narrowed')}",
            f"  community requests {kind('community', 'total')}, clips shared "
            f"{count(self.community_clips_shared, before.community_clips_shared)}",
            f"  disclosure packages {count(self.packages, before.packages)}, clips disclosed "
            f"{count(self.clips_disclosed, before.clips_disclosed)}, notices delivered "
            f"{count(self.notices_delivered, before.notices_delivered)}",
        ]


def figures(base_url: str) -> Figures:
    response = httpx.get(base_url + REPORT, timeout=60)
    if response.status_code == 404:
        return Figures(available=False)
    response.raise_for_status()
    return parse_figures(response.json())


def parse_figures(body: dict[str, Any]) -> Figures:
    requests = {
        row["kind"]: {k: v for k, v in row.items() if isinstance(v, int)}
        for row in body["requests"]
    }
    disclosures = body["disclosures"]
    return Figures(
        available=True,
        requests=requests,
        packages=disclosures["packages"],
        clips_disclosed=disclosures["clips"],
        households_disclosed=disclosures["households"],
        notices_delivered=body["notices"]["delivered"],
        community_clips_shared=body["community"]["clips_shared"],
    )


@dataclass(frozen=True)
class Growth:
    before: int
    after: int
    origin: str


class LogWatch:
    """The log's size now; later, wait until the server's appender has added to it."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.key = NoteKey.from_verifier(self._get("/api/v1/log/key").strip())
        self.start = self.checkpoint()

    def _get(self, path: str) -> str:
        response = httpx.get(self.base_url + path, timeout=30)
        response.raise_for_status()
        return response.text

    def checkpoint(self) -> Checkpoint:
        """The newest checkpoint, its signature checked against the instance key."""
        return open_checkpoint(self._get("/api/v1/log/checkpoint").encode(), self.key)

    def wait_for_growth(self, timeout_s: float) -> Growth:
        deadline = time.monotonic() + timeout_s
        while True:
            now = self.checkpoint()
            if now.size > self.start.size or time.monotonic() > deadline:
                return Growth(self.start.size, now.size, now.origin)
            time.sleep(0.5)
