"""Who and where: the demo's accounts, its three homes on one street, and the agency.

The homes are a few dozen metres apart in one small area (the community request's area
of about 0.07 square miles holds all three), inside the agency's jurisdiction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from doorwarden.roles import Role

DEMO_PASSWORD = "doorwarden-demo"
AGENCY_NAME = "Demo Borough Police"
AGENCY_JURISDICTION = "Demo Borough"
APPROVING_BODY = "Demo Borough Council"
APPROVAL_REFERENCE = "Surveillance Technology Ordinance 2026-7"
# The instance's audit log name. Fixed rather than derived from the URL (the default),
# so that running the demo again on another --port continues the same log.
LOG_ORIGIN = "demo.doorwarden.invalid/log"


@dataclass(frozen=True)
class DemoAccount:
    email: str
    role: Role
    name: str
    what: str


ADMIN = DemoAccount(
    "admin@demo.doorwarden",
    Role.operator_admin,
    "Olive Operator",
    "runs the instance, verifies agencies; sees no footage",
)
# A second operator: verifying an agency and recording its approval are two people's acts
# (policy rule 8), and so is a staff invite made on the web (a proposal and a confirmation).
SECOND_ADMIN = DemoAccount(
    "admin2@demo.doorwarden",
    Role.operator_admin,
    "Omar Operator",
    "a second operator: records approvals, confirms invites; sees no footage",
)
RESIDENT = DemoAccount(
    "resident@demo.doorwarden",
    Role.resident,
    "Alex Resident",
    "owns Demo House, 12 Elm Street: clips, live, requests",
)
PARTNER = DemoAccount(
    "partner@demo.doorwarden",
    Role.resident,
    "Sam Partner",
    "shared user of Demo House: live and clips, no settings",
)
NEIGHBOUR = DemoAccount(
    "neighbour@demo.doorwarden",
    Role.resident,
    "Nia Neighbour",
    "owns Next Door, 14 Elm Street",
)
ACROSS = DemoAccount(
    "across@demo.doorwarden",
    Role.resident,
    "Ravi Across",
    "owns Across the Road, 9 Elm Street",
)
# The end-to-end household's resident unlocks their key in the browser with this (a
# passphrase backup made at seed time: demo/e2e_home.py). A demo secret, printed.
E2E_PASSPHRASE = "quiet house demo key"
PRIVATE = DemoAccount(
    "private@demo.doorwarden",
    Role.resident,
    "Kai Private",
    f"owns Quiet House, 16 Elm Street, end to end: key passphrase '{E2E_PASSPHRASE}'",
)
OFFICER = DemoAccount(
    "officer@demo.doorwarden",
    Role.agency_officer,
    "Officer Dana",
    f"officer-administrator of {AGENCY_NAME}: files requests, invites its officers; never live",
)
REVIEWER = DemoAccount(
    "reviewer@demo.doorwarden",
    Role.legal_reviewer,
    "Robin Reviewer",
    "approves, narrows or rejects demands (/review)",
)
AUDITOR = DemoAccount(
    "auditor@demo.doorwarden",
    Role.auditor,
    "Avery Auditor",
    "reads the instance's audit trail (/audit)",
)
ACCOUNTS = [
    ADMIN,
    SECOND_ADMIN,
    RESIDENT,
    PARTNER,
    NEIGHBOUR,
    ACROSS,
    PRIVATE,
    OFFICER,
    REVIEWER,
    AUDITOR,
]

Footage = Literal["vtest", "synthetic"]


@dataclass(frozen=True)
class DemoCamera:
    name: str  # the agent's camera name (a slug)
    label: str  # the device's name in the household
    footage: Footage
    # Which camera labels people when the demo runs with --people. The detector is the
    # costly stage: the bundled NanoDet takes ~25-70 ms of CPU per look, once a second
    # while there is motion, which on vtest.avi is nearly always.
    people_detection: bool = False
    # Blacked out on the camera, in clips and live: a neighbour's window, for instance.
    privacy_zones: tuple[tuple[tuple[float, float], ...], ...] = ()
    # Two-way talk through the doorbell's speaker (demo/talk.py: an ONVIF backchannel).
    talk: bool = False


@dataclass(frozen=True)
class DemoHome:
    slug: str  # the folder of its camera agent under the data directory
    name: str
    address: str
    latitude: float
    longitude: float
    owner: DemoAccount
    camera: DemoCamera
    shared_with: tuple[DemoAccount, ...] = ()


TIME_ZONE = "Europe/London"
HOMES = [
    DemoHome(
        "demo-house",
        "Demo House",
        "12 Elm Street",
        51.50720,
        -0.12760,
        RESIDENT,
        DemoCamera("front-door", "Front door", "vtest", people_detection=True),
        shared_with=(PARTNER,),
    ),
    DemoHome(
        "next-door",
        "Next Door",
        "14 Elm Street",
        51.50735,
        -0.12790,
        NEIGHBOUR,
        DemoCamera(
            "driveway",
            "Driveway",
            "vtest",
            privacy_zones=(((0.0, 0.0), (0.3, 0.0), (0.3, 0.35), (0.0, 0.35)),),
        ),
    ),
    DemoHome(
        "across-the-road",
        "Across the Road",
        "9 Elm Street",
        51.50700,
        -0.12720,
        ACROSS,
        DemoCamera("porch", "Porch", "synthetic", talk=True),
    ),
]

# The end-to-end household (docs/e2e.md): its camera seals every clip to its resident's
# own key, which the server never holds. Apart from HOMES, whose three homes are the
# legal story's street (the warrant, the community request, the coverage map's cell).
E2E_HOME = DemoHome(
    "quiet-house",
    "Quiet House",
    "16 Elm Street",
    51.50750,
    -0.12820,
    PRIVATE,
    DemoCamera("hallway", "Hallway", "synthetic"),
)
ALL_HOMES = [*HOMES, E2E_HOME]


def box(west: float, south: float, east: float, north: float) -> dict[str, Any]:
    """A GeoJSON Polygon (longitude, latitude), counter-clockwise."""
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


# The borough: about 10 x 8 km around the street.
JURISDICTION_AREA = box(-0.20, 51.47, -0.05, 51.54)
# The community request's area: about 415 x 445 m around the three homes (0.07 sq mi).
COMMUNITY_AREA = box(-0.1306, 51.5052, -0.1246, 51.5092)
