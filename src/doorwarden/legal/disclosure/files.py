"""The documents inside a disclosure package, and the ZIP they are written to.

Pure functions from rows to JSON-ready values, and a synchronous ZIP writer the builder
drives from worker threads (legal/package.py); the format is docs/legal-process.md,
"Disclosure packages", and its names are doorwarden.packagefiles.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

from doorwarden.accounts.models import User
from doorwarden.agencies.models import Agency, LegalDocument
from doorwarden.audit.models import AuditEvent
from doorwarden.clips.models import Clip
from doorwarden.formats.clip_files import READ_BLOCK
from doorwarden.formats.package_files import PACKAGE_JSON, PACKAGE_SIG, document_path
from doorwarden.households.models import Household, HouseholdMember
from doorwarden.legal.models import LegalRequest, ScopeItem


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, or None."""
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_date(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


class PackageZip:
    """A STORED (ciphertext does not compress), zip64 ZIP on disk that records the size
    and SHA-256 of every entry it writes, for package.json's `files`."""

    def __init__(self, path: Path, now: datetime) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._file = os.fdopen(fd, "wb")
        self._zip = zipfile.ZipFile(self._file, "w", zipfile.ZIP_STORED, allowZip64=True)
        self._stamp = now.astimezone(UTC).timetuple()[:6]
        self.files: list[dict[str, Any]] = []
        self._open: tuple[str, IO[bytes], Any, int] | None = None

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self._stamp)
        info.compress_type = zipfile.ZIP_STORED
        info.external_attr = (stat.S_IFREG | 0o644) << 16  # a plain file, never a link
        return info

    def _listed(self, name: str, size: int, sha256: str) -> None:
        if name not in (PACKAGE_JSON, PACKAGE_SIG):
            self.files.append({"path": name, "size": size, "sha256": sha256})

    def add(self, name: str, data: bytes) -> str:
        """Write a whole entry; its SHA-256."""
        self._zip.writestr(self._info(name), data)
        sha256 = hashlib.sha256(data).hexdigest()
        self._listed(name, len(data), sha256)
        return sha256

    def begin(self, name: str) -> None:
        """Start a streamed entry: `write` its blocks, then `end` it."""
        out = self._zip.open(self._info(name), "w", force_zip64=True)
        self._open = (name, out, hashlib.sha256(), 0)

    def write(self, block: bytes) -> None:
        assert self._open is not None  # noqa: S101 - begin() comes first
        name, out, digest, size = self._open
        out.write(block)
        digest.update(block)
        self._open = (name, out, digest, size + len(block))

    def end(self) -> tuple[int, str]:
        """Close the streamed entry; its (size, SHA-256)."""
        assert self._open is not None  # noqa: S101 - begin() comes first
        name, out, digest, size = self._open
        out.close()
        self._open = None
        self._listed(name, size, digest.hexdigest())
        return size, digest.hexdigest()

    def close(self) -> None:
        try:
            if self._open is not None:
                self._open[1].close()
            self._zip.close()
        finally:
            self._file.close()


def file_digest(path: Path) -> tuple[int, str]:
    """(size, SHA-256) of a file, read in blocks."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while block := f.read(READ_BLOCK):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def request_json(
    request: LegalRequest,
    agency: Agency,
    scope: Sequence[ScopeItem],
    documents: Sequence[LegalDocument],
    approved_cameras: int,
) -> dict[str, Any]:
    """The request as filed and as decided. No household's name or address: the scope is
    what the agency itself named, and the decision counts cameras."""
    return {
        "id": str(request.id),
        "agency": {"id": str(agency.id), "name": agency.name},
        "kind": str(request.kind),
        "case_number": request.case_number,
        "submitted_at": iso(request.created_at),
        "issuing_court": request.issuing_court,
        "judge": request.judge,
        "signed_on": iso_date(request.signed_on),
        "expires_at": iso(request.expires_at),
        "window": {"start": iso(request.window_start), "end": iso(request.window_end)},
        "justification": request.justification,
        "emergency_description": request.emergency_description,
        "public_text": request.public_text,
        "area": request.area,
        "nondisclosure_until": iso(request.nondisclosure_until),
        "scope": [{"kind": str(s.kind), "value": s.value} for s in scope],
        "documents": [
            {
                "kind": str(d.kind),
                "sha256": d.sha256,
                "size": d.size,
                "pages": d.pages,
                "filename": d.filename,
                "path": document_path(str(d.kind), d.sha256),
            }
            for d in documents
        ],
        "decision": {
            "status": str(request.status),
            "outcome": str(request.outcome) if request.outcome else None,
            "decided_at": iso(request.decided_at),
            "reason": request.decision_reason,
            "checklist": request.checklist,
            "approved_window": {
                "start": iso(request.approved_start),
                "end": iso(request.approved_end),
            },
            "approved_cameras": approved_cameras,
            "reviewer": str(request.reviewer_id) if request.reviewer_id else None,
        },
    }


def _event(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "occurred_at": iso(event.occurred_at),
        "tag": event.tag,
        "actor_role": event.actor_role,
        "actor_user_id": str(event.actor_user_id) if event.actor_user_id else None,
        "log_index": event.log_index,
    }


def custody_json(
    request: LegalRequest,
    events: Sequence[AuditEvent],
    clips: Sequence[Clip],
    received: dict[str, AuditEvent],
    *,
    log_origin: str,
    log_key: str,
    checkpoint: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Who did what to the request, when each clip arrived, and the log that records it.
    An event with log_index null was not in the log yet when the package was built."""
    return {
        "request": str(request.id),
        "built_at": iso(now),
        "events": [_event(e) for e in events],
        "clips": [
            {
                "clip": str(c.id),
                "device": str(c.device_id),
                "sequence": c.sequence,
                "created_at": iso(c.created_at),
                "verified_at": iso(c.verified_at),
                "received": _event(received[str(c.id)]) if str(c.id) in received else None,
            }
            for c in clips
        ],
        "log": {"origin": log_origin, "key": log_key, "checkpoint": checkpoint},
    }


def subscribers_json(
    households: Sequence[Household], members: Sequence[tuple[HouseholdMember, User]]
) -> list[dict[str, Any]]:
    """Subscriber information and nothing more: the household's name, address and dates,
    its members' names and account dates. No e-mail address or role: a subpoena reaches
    who the subscriber is, not how to contact them or who administers the home."""
    by_household: dict[Any, list[tuple[HouseholdMember, User]]] = {}
    for member, user in members:
        by_household.setdefault(member.household_id, []).append((member, user))
    return [
        {
            "household": str(h.id),
            "name": h.name,
            "address": h.address,
            "created_at": iso(h.created_at),
            "members": [
                {"display_name": user.display_name, "account_created_at": iso(user.created_at)}
                for _, user in by_household.get(h.id, [])
            ],
        }
        for h in households
    ]


def readme(package_id: str, origin: str, kind: str) -> str:
    contents = (
        "subscriber information (subscribers.json) and no video"
        if kind == "subscriber"
        else "recorded clips, sealed and signed by the cameras that recorded them"
    )
    return f"""doorwarden disclosure package {package_id}
from {origin}

This ZIP is what the instance disclosed in answer to one legal request: {contents},
the request as filed and decided (request.json), its documents (documents/), and the
chain of custody (custody.json).

package.sig is the instance's signature over package.json, which lists every other
file with its size and SHA-256. Each clip's manifest is signed by its camera (keys in
devices.json); keys.json holds the keys of the clips the provider could open, so their
content can be decrypted and checked against what the camera signed. Clips marked
"not_available_to_provider" are end-to-end encrypted: the provider holds only their
ciphertext and metadata.

Check it offline, pinning the instance's verifier key as the instance publishes it
(GET /api/v1/log/key on the instance; not the copy in package.json, which a forger
would replace with their own):

    doorwarden verify {package_id}.zip --instance-key 'KEY'

and write the decrypted, verified clips for viewing:

    doorwarden verify {package_id}.zip --instance-key 'KEY' --extract clips/

custody.json's checkpoint and `doorwarden verify-log` show that the events it lists
are in the instance's public audit log. The format is described in the instance's
docs/legal-process.md, "Disclosure packages".
"""
