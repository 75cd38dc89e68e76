"""The audit chain on PostgreSQL while many requests commit at once (real commits, own database).

Devices push batches while a leader edits targets and people sign in: the chain must end up
without forks or gaps, every request's entries in one unbroken run, and verify must pass.
"""

from __future__ import annotations

import itertools
import threading
import uuid

import sqlalchemy as sa

from fieldapp.audit import operations as audit
from fieldapp.audit.models import AuditEntry
from fieldapp.db import db
from tests.conftest import PASSWORD
from tests.sync_helpers import FakeDevice, new_inspection
from tests.test_sync_concurrency import device_for

PUSHERS = 4
BATCHES = 5
PER_BATCH = 20
EDITS = 15


def test_concurrent_writers_leave_one_unbroken_chain(pg_app):
    app, world = pg_app
    pushers: list[FakeDevice] = [
        device_for(app, name, f"audit-race-{n}")
        for n, name in enumerate(["officer1", "officer2", "officer1", "officer2"])
    ]
    leader = device_for(app, "leader1", "audit-race-leader").api
    errors: list[BaseException] = []

    def push(device: FakeDevice, officer: str):
        try:
            for _ in range(BATCHES):
                records = [uuid.uuid4() for _ in range(PER_BATCH)]
                # A rejected change in each batch: its savepoint (and entry) rolls back.
                bad = new_inspection(world, [officer], origin="meteor")
                results = device.push_ok(
                    *[
                        device.change("inspection", r, new_inspection(world, [officer]))
                        for r in records
                    ],
                    device.change("inspection", uuid.uuid4(), bad),
                )
                assert [r["status"] for r in results].count("rejected") == 1
                device.push_ok(
                    *[
                        device.change("inspection", r, {"findings": "复查"}, base_version=1)
                        for r in records
                    ]
                )
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)

    def edit_and_sign_in():
        try:
            path = f"/api/v1/targets/{world.targets['site1'].id}"
            for n in range(EDITS):
                etag = leader.get(path).headers["ETag"]
                response = leader.patch(
                    path, json={"address": f"塘后路{n}号"}, headers={"If-Match": etag}
                )
                assert response.status_code == 200, response.get_json()
                signed_in = app.test_client().post(
                    "/api/v1/auth/token",
                    json={"username": "officer3", "password": PASSWORD, "device_id": f"p-{n}"},
                )
                assert signed_in.status_code == 201
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=push, args=(d, "officer1" if n % 2 == 0 else "officer2"))
        for n, d in enumerate(pushers)
    ] + [threading.Thread(target=edit_and_sign_in)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors

    with app.app_context():
        verdict = audit.verify(db.session())
        rows = db.session.execute(
            sa.select(AuditEntry.seq, AuditEntry.request_id, AuditEntry.action).order_by(
                AuditEntry.seq
            )
        ).all()
    assert verdict.ok, verdict
    assert verdict.entries == len(rows) == rows[-1].seq
    actions = [r.action for r in rows]
    assert actions.count("inspection.create") == PUSHERS * BATCHES * PER_BATCH
    assert actions.count("inspection.update") == PUSHERS * BATCHES * PER_BATCH
    assert actions.count("target.update") == EDITS
    # Each request's entries were chained together at its commit: one unbroken run apiece.
    runs = [key for key, _ in itertools.groupby(r.request_id for r in rows if r.request_id)]
    assert len(runs) == len(set(runs))
