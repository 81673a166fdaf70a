"""The installable web app: the service worker at /sw.js (at the root, so its scope is
the whole site without a Service-Worker-Allowed header) and the web app manifest.

Both are public (a browser fetches them before and without a session) and say nothing
about any household: the service worker learns what to show from each push it receives.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from starlette.responses import JSONResponse, Response

from doorwarden import __version__
from doorwarden.deps import authorize
from doorwarden.policy import Action, Principal
from doorwarden.web.render import STATIC_DIR

router = APIRouter(include_in_schema=False)
Public = Annotated[Principal, authorize(Action.page_public)]

SERVICE_WORKER = STATIC_DIR / "sw.js"
# The browser checks for a new worker on navigation; no-cache makes that check reach us
# (a cached worker would keep an old push handler for up to a day).
REVALIDATE = {"cache-control": "no-cache"}
THEME = "#1d4e89"


def manifest() -> dict[str, Any]:
    """What makes the web app installable (Android, desktop, iOS 16.4+ home screen):
    a name, icons of 192 and 512 pixels, a start URL and a standalone display."""
    icons = [
        {
            "src": f"/static/icons/icon-{size}.png?v={__version__}",
            "sizes": f"{size}x{size}",
            "type": "image/png",
            "purpose": "any",
        }
        for size in (192, 512)
    ]
    return {
        "id": "/",
        "name": "doorwarden",
        "short_name": "doorwarden",
        "description": "Your doorbell and cameras: rings, live view and clips.",
        "start_url": "/households",
        "scope": "/",
        "display": "standalone",
        "background_color": "#f5f7fa",
        "theme_color": THEME,
        "icons": icons,
    }


@router.get("/manifest.webmanifest")
async def web_app_manifest(_p: Public) -> Response:
    return JSONResponse(manifest(), media_type="application/manifest+json", headers=REVALIDATE)


@router.get("/sw.js")
async def service_worker(_p: Public) -> Response:
    return Response(SERVICE_WORKER.read_bytes(), media_type="text/javascript", headers=REVALIDATE)
