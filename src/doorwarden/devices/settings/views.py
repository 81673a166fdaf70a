"""The settings page of a camera: zones drawn over a fresh snapshot, and the motion,
recording and notification settings (docs/camera-settings.md, "On the web page").

The page only sets the stage: static/zones.js reads and writes the settings through the
JSON API (devices/settings/router.py), which makes its own policy decision on every
call, audits it and pushes the change to the agent. This route asks the same policy
(camera:settings, the household's owner only), so a shared member or a staff role gets a
403 here rather than a page whose every request would be refused.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from annotated_types import Ge, Gt, Le
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from doorwarden.deps import LiveHubDep, SessionDep, authorize, household_resource
from doorwarden.devices.settings import service
from doorwarden.devices.settings.models import CAMERA_NAME_MAX
from doorwarden.formats.camera_settings import CameraSettings
from doorwarden.households import service as households
from doorwarden.policy import Action, Principal
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)

# The three polygon layers, in the order the editor lists them.
LAYERS = ("privacy_zones", "motion.zones", "motion.ignore")
# The rest, grouped as the agent's YAML groups them.
GROUPS = (
    ("Motion", ("detection.enabled", "motion.sensitivity", "motion.min_area",
                "motion.analysis_fps")),
    ("Recording", ("record.pre_roll_s", "record.post_roll_s", "record.min_clip_s",
                   "record.max_clip_s")),
    ("People and notifications", ("detect.person", "notify.labels")),
)  # fmt: skip
NOTIFY_LABELS = (("motion", "Motion"), ("person", "A person"), ("ring", "A doorbell press"))


@dataclass(frozen=True)
class FieldView:
    """One setting as the page shows it: its label and help come from the model (the same
    text as the agent's configuration reference), its input's kind and bounds too."""

    name: str  # dotted, as the API and the YAML spell it
    title: str
    description: str
    kind: str  # "number", "bool", "labels" or "polygons"
    bounds: dict[str, str]

    @property
    def dom_id(self) -> str:
        return "setting-" + self.name.replace(".", "-").replace("_", "-")


def _bounds(metadata: list[Any]) -> dict[str, str]:
    """The input's min and max from the field's constraints (a `gt` bound is shown as a
    min; the API refuses the bound itself with the field named)."""
    found: dict[str, str] = {}
    for item in metadata:
        if isinstance(item, Ge | Gt):
            found["min"] = str(item.ge if isinstance(item, Ge) else item.gt)
        elif isinstance(item, Le):
            found["max"] = str(item.le)
    return found


def _field_views() -> dict[str, FieldView]:
    views = {}
    for info in CameraSettings.model_fields.values():
        name = str(info.alias)
        if name in LAYERS:
            kind = "polygons"
        elif name == "notify.labels":
            kind = "labels"
        elif info.annotation == bool | None:
            kind = "bool"
        else:
            kind = "number"
        views[name] = FieldView(
            name, info.title or name, info.description or "", kind, _bounds(info.metadata)
        )
    return views


FIELD_VIEWS = _field_views()


@router.get("/households/{household_id}/cameras/{device_id}/settings")
async def camera_settings_page(
    request: Request,
    household_id: uuid.UUID,
    device_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.camera_settings, household_resource)],
    db: SessionDep,
    hub: LiveHubDep,
    camera: Annotated[str, Query(max_length=CAMERA_NAME_MAX)] = "",
) -> Response:
    device = await service.device_of(db, household_id=household_id, device_id=device_id)
    household = await households.get_household(db, household_id)
    # The names its agent announced when connected (its first is "the camera" of a
    # one-camera box), else those with settings here: the API's own rule.
    link = hub.agents.get(device_id)
    cameras = await service.cameras_of(db, device_id, link.cameras if link is not None else None)
    chosen = camera.strip() or (cameras[0] if cameras else "")
    base = f"/api/v1/households/{household_id}/devices/{device_id}/cameras/"
    context = {
        "household": household,
        "device": device,
        "cameras": cameras,
        "camera": chosen,
        "api_base": base,
        "layers": [FIELD_VIEWS[name] for name in LAYERS],
        "groups": [(title, [FIELD_VIEWS[n] for n in names]) for title, names in GROUPS],
        "notify_labels": NOTIFY_LABELS,
    }
    return render(request, "cameras/settings.html", context)
