"""The public coverage map page. The totals are in the HTML (readable without scripts);
coverage.js draws the map from the JSON API, on tiles from `map_tile_url` if one is set,
otherwise on a plain background with no request leaving this instance."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from starlette.responses import Response

from doorwarden.deps import SettingsDep, authorize
from doorwarden.middleware import content_security_policy
from doorwarden.policy import Action, Principal
from doorwarden.transparency.router import COVERAGE_PATH, CoverageDep
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)

TABLE_ROWS = 100  # the largest cells; all of them are in the JSON


def tile_origin(tile_url: str) -> str:
    """The origin map tiles come from, as a CSP source: "{s}." (the tile server's
    subdomains) becomes a wildcard. config.py has checked the URL's shape."""
    parts = urlsplit(tile_url)
    host = parts.netloc.lower()
    if host.startswith("{s}."):
        host = "*." + host.removeprefix("{s}.")
    return f"{parts.scheme}://{host}"


@router.get("/transparency/coverage")
async def coverage_page(
    request: Request,
    _p: Annotated[Principal, authorize(Action.page_public)],
    counted: CoverageDep,
    settings: SettingsDep,
) -> Response:
    context = {
        "coverage": counted,
        "cells": counted.cells[:TABLE_ROWS],
        "data_url": COVERAGE_PATH,
        "tile_url": settings.map_tile_url or "",
        "tile_attribution": settings.map_tile_attribution,
        "refresh_minutes": round(settings.coverage_cache_s / 60),
        # Governance (agency camera programmes, src/doorwarden/governance/) does not exist
        # yet, so there is nothing to list; the page says that no programme is on record.
        "programmes": [],
    }
    response = render(request, "transparency/coverage.html", context)
    if settings.map_tile_url:
        # Only this page may load images from the tile server; every other page keeps
        # the default policy (middleware.py).
        response.headers["content-security-policy"] = content_security_policy(
            img_sources=(tile_origin(settings.map_tile_url),)
        )
    return response
