"""Enumerating the app's routes and the policy action each one declares."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from starlette.routing import Mount

from doorwarden.policy import Action


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    actions: tuple[Action, ...]
    authorize_calls: tuple[Any, ...]


def _walk(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _walk(sub)


def _routes(app: FastAPI) -> Iterator[tuple[str, set[str], Any]]:
    """(path, methods, the route as this app serves it). The effective route matters: with
    string annotations, FastAPI evaluates `authorize(...)` again for each including app,
    so only this app's dependant holds the callables this app will call."""
    if hasattr(routing, "iter_route_contexts"):  # FastAPI >= 0.150 keeps routers nested
        for context in routing.iter_route_contexts(app.routes):
            yield context.path, set(context.methods or ()), context
    else:  # pragma: no cover - older FastAPI flattens included routers
        for route in app.routes:
            yield getattr(route, "path", ""), set(getattr(route, "methods", ()) or ()), route


def inventory(app: FastAPI) -> tuple[list[RouteInfo], list[str]]:
    """(API routes with their declared actions, anything else that is mounted)."""
    routes: list[RouteInfo] = []
    others: list[str] = []
    for path, methods, route in _routes(app):
        if isinstance(getattr(route, "original_route", route), Mount):
            others.append(f"mount {path}")
            continue
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            others.append(f"route {path}")
            continue
        calls = [c for c in _walk(dependant) if getattr(c, "policy_action", None) is not None]
        for method in sorted(methods - {"HEAD"}):
            routes.append(
                RouteInfo(method, path, tuple(c.policy_action for c in calls), tuple(calls))
            )
    return routes, others
