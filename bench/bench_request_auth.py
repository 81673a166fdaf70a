"""What authentication and authorisation cost per request (the query hot path).

Runs the real app in-process on a fresh SQLite database and times, in the same run:
  baseline   GET /healthz, anonymous (routing, middleware, a database session)
  token      GET /api/v1/households/{id} with a bearer token
  session    the same with a session cookie
and policy.decide() alone. Prints requests/s and each case's cost relative to the
baseline (ratios, because absolute times on a shared machine are noise).

    .venv/bin/python bench/bench_request_auth.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from doorwarden import policy
from doorwarden.accounts import api_tokens, service
from doorwarden.audit.service import RequestContext
from doorwarden.config import Settings
from doorwarden.db import upgrade_database
from doorwarden.households import service as households
from doorwarden.main import create_app
from doorwarden.roles import HouseholdRole, Role

PASSWORD = "benchmark password"
CTX = RequestContext(client_address="bench")


async def _seed(app: object) -> tuple[uuid.UUID, str]:
    async with app.state.sessionmaker.begin() as db:  # type: ignore[attr-defined]
        user = await service.create_user(
            db,
            email="bench@example.org",
            display_name="Bench",
            password=PASSWORD,
            role=Role.resident,
        )
        home = await households.create_household(
            db,
            owner=user,
            name="Bench",
            address="",
            latitude=None,
            longitude=None,
            time_zone="UTC",
            ctx=CTX,
        )
        _, token = await api_tokens.create_token(
            db, user=user, name="bench", expires_at=None, ctx=CTX, now=app.state.clock.now()
        )  # type: ignore[attr-defined]
    return home.id, token


async def _rate(client: httpx.AsyncClient, url: str, n: int, headers: dict[str, str]) -> float:
    for _ in range(50):  # warm-up
        assert (await client.get(url, headers=headers)).status_code == 200
    started = time.perf_counter()
    for _ in range(n):
        await client.get(url, headers=headers)
    return n / (time.perf_counter() - started)


def _decisions_per_second(n: int) -> float:
    home = uuid.uuid4()
    who = policy.Principal(
        user_id=uuid.uuid4(),
        role=Role.resident,
        households={home: HouseholdRole.owner},
        auth=policy.AuthMethod.session,
    )
    resource = policy.HouseholdResource(home)
    started = time.perf_counter()
    for _ in range(n):
        policy.decide(who, policy.Action.household_read, resource)
    return n / (time.perf_counter() - started)


async def main(requests: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await upgrade_database(url)
        settings = Settings(development=True, database_url=url, data_dir=Path(tmp), log_json=True)
        app = create_app(settings)
        import logging  # noqa: PLC0415

        from doorwarden.logging import configure_logging  # noqa: PLC0415

        configure_logging(json=True, level=logging.WARNING)  # request logs would dominate
        async with app.router.lifespan_context(app):
            home, token = await _seed(app)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                login = await client.post(
                    "/api/v1/session", json={"email": "bench@example.org", "password": PASSWORD}
                )
                cookie = {"cookie": f"dw_session={login.cookies['dw_session']}"}
                client.cookies.clear()
                cases = {
                    "baseline (GET /healthz, anonymous)": ("/healthz", {}),
                    "bearer token, GET household": (
                        f"/api/v1/households/{home}",
                        {"authorization": f"Bearer {token}"},
                    ),
                    "session cookie, GET household": (f"/api/v1/households/{home}", cookie),
                }
                results: dict[str, list[float]] = {name: [] for name in cases}
                for _ in range(rounds):  # interleaved, so drift hits every case alike
                    for name, (path, headers) in cases.items():
                        results[name].append(await _rate(client, path, requests, headers))
    baseline = statistics.median(results[next(iter(cases))])
    print(f"{'case':<40} {'req/s (median)':>15} {'time vs baseline':>18}")
    for name, rates in results.items():
        rate = statistics.median(rates)
        print(f"{name:<40} {rate:>15.0f} {baseline / rate:>17.2f}x")
    decisions = _decisions_per_second(200_000)
    print(
        f"{'policy.decide() alone':<40} {decisions:>15.0f} "
        f"{'(' + format(100 * baseline / decisions, '.2f') + '% of a baseline request)':>18}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds))
