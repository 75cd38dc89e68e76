"""Concurrency on PostgreSQL: devices push at once while another pulls by cursor.

This runs on its own database with real commits (no per-test rollback), because the point is
what other transactions see while commits race.
"""

from __future__ import annotations

import threading
import uuid

import sqlalchemy as sa

from fieldapp.db import db
from fieldapp.inspections.models import Inspection
from tests.conftest import sign_in
from tests.sync_helpers import FakeDevice, new_inspection

PUSHERS = 4
BATCHES = 6
PER_BATCH = 5


def device_for(app, username: str, device_id: str) -> FakeDevice:
    return FakeDevice(sign_in(app, username, device_id))


def test_a_puller_sees_every_change_exactly_once_while_pushes_race(pg_app):
    app, world = pg_app
    pushers = [
        device_for(app, name, f"race-{n}")
        for n, name in enumerate(["officer1", "officer2", "officer1", "officer2"])
    ]
    puller = device_for(app, "leader1", "race-leader")
    done = threading.Event()
    errors: list[BaseException] = []
    seen: list[tuple[str, int]] = []

    def push(device: FakeDevice, officer: str):
        try:
            for _ in range(BATCHES):
                records = [uuid.uuid4() for _ in range(PER_BATCH)]
                device.push_ok(
                    *[
                        device.change("inspection", r, new_inspection(world, [officer]))
                        for r in records
                    ]
                )
                device.push_ok(
                    *[
                        device.change("inspection", r, {"findings": "复查"}, base_version=1)
                        for r in records
                    ]
                )
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)

    def pull():
        try:
            while not done.is_set():
                seen.extend(
                    (c["id"], c["version"])
                    for c in puller.pull_all(limit=7)
                    if c["entity"] == "inspection"
                )
            seen.extend(
                (c["id"], c["version"])
                for c in puller.pull_all(limit=7)
                if c["entity"] == "inspection"
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=push, args=(d, "officer1" if n % 2 == 0 else "officer2"))
        for n, d in enumerate(pushers)
    ]
    reader = threading.Thread(target=pull)
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    done.set()
    reader.join(timeout=120)
    assert not errors, errors

    with app.app_context():
        final = {
            str(i): v for i, v in db.session.execute(sa.select(Inspection.id, Inspection.version))
        }
    assert len(final) == PUSHERS * BATCHES * PER_BATCH
    # Never the same version twice, never a version going backwards, and the last one seen is
    # the record as the server holds it.
    assert len(seen) == len(set(seen))
    last: dict[str, int] = {}
    for record_id, version in seen:
        assert version > last.get(record_id, 0)
        last[record_id] = version
    assert last == final
