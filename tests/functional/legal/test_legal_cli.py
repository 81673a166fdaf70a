"""`doorwarden legal run`, as cron runs it: a subprocess on the instance's database, with
the real clock, delivering what the server's loop would have delivered."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.legal.models import Notice
from tests.factories import SECRET, Factory
from tests.functional.cli.test_cli import run
from tests.legal_flow import cast, device_item, file_with_documents, home, warrant_details
from tests.pdfs import pdf_bytes


async def test_legal_run_delivers_notices_whose_order_has_ended(
    factory: Factory, settings: Settings, clock: ManualClock
) -> None:
    # Filed two days ago under an order that ended yesterday (by the real clock).
    clock.advance(timedelta(days=-2))
    people = await cast(factory)
    elm = await home(factory, "12 Elm Street")
    order_end = clock.now() + timedelta(days=1)
    details = warrant_details(
        [device_item(elm.camera.id)], nondisclosure_until=order_end.isoformat()
    )
    filed = await file_with_documents(
        people.officer_client,
        people.agency_id,
        "warrants",
        details,
        document=pdf_bytes("sealed warrant"),
        nondisclosure=pdf_bytes("order"),
    )
    assert filed.status_code == 201, filed.text
    await people.close()
    env = {
        "DOORWARDEN_SECRET_KEY": SECRET,
        "DOORWARDEN_DATABASE_URL": settings.effective_database_url,
        "DOORWARDEN_DATA_DIR": str(settings.data_dir),
    }
    result = run("legal", "run", env=env)
    assert result.returncode == 0, result.stderr
    assert "notices delivered: 1" in result.stdout
    async with factory.app.state.sessionmaker() as db:
        [notice] = (await db.scalars(select(Notice))).all()
        assert notice.delivered_at is not None
    again = run("legal", "run", env=env)
    assert again.returncode == 0 and "notices delivered: 0" in again.stdout
