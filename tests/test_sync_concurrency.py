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
from tests.sync_helpers import NEW_SHOP, FakeDevice, new_inspection

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


def test_a_push_committing_between_a_pages_statements_is_not_skipped(pg_app):
    """A page reads several tables, and PostgreSQL gives each statement its own snapshot. A
    push that commits a new shop and its first inspection after the page's first statement
    must not leave the puller with the inspection and a cursor past the shop."""
    app, world = pg_app
    officer = device_for(app, "officer1", "between-officer")
    leader = device_for(app, "leader1", "between-leader")
    leader.pull_all()  # up to date: what follows is the only news
    shop_id, inspection_id = uuid.uuid4(), uuid.uuid4()
    puller, fired = threading.current_thread(), threading.Event()

    def push_after_first_read(conn, cursor, statement, *args):
        # Once, from another thread and its own transaction, as another device would, after
        # the page's first statement (the one that reads the shops' numbers, whatever else).
        page_began = "change_seq" in statement and "FROM targets" in statement
        if page_began and threading.current_thread() is puller and not fired.is_set():
            fired.set()
            pusher = threading.Thread(
                target=officer.push_ok,
                args=(
                    officer.change("target", shop_id, NEW_SHOP),
                    officer.change(
                        "inspection",
                        inspection_id,
                        new_inspection(world, ["officer1"]) | {"target_id": str(shop_id)},
                    ),
                ),
            )
            pusher.start()
            pusher.join(timeout=60)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "after_cursor_execute", push_after_first_read)
    try:
        pulled = leader.pull_all()
    finally:
        sa.event.remove(engine, "after_cursor_execute", push_after_first_read)
    assert fired.is_set()
    pulled += leader.pull_all()  # the next sync
    assert {(c["entity"], c["id"]) for c in pulled} >= {
        ("target", str(shop_id)),
        ("inspection", str(inspection_id)),
    }
