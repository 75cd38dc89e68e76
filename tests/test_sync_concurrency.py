"""Concurrency on PostgreSQL: devices push at once while another pulls by cursor.

This runs on its own database with real commits (no per-test rollback), because the point is
what other transactions see while commits race.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from fieldapp.auth.models import Device
from fieldapp.db import db
from fieldapp.inspections.models import Inspection
from tests.conftest import (
    RACE_WAIT,
    Api,
    add_shop,
    at_once,
    sign_in,
    status_of,
    until_there_or_waiting,
)
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


def test_two_pushes_of_one_pad_with_a_fast_clock_take_turns(pg_app, monkeypatch):
    """A pad whose clock runs ten minutes fast (the officer set it by hand) syncs from two
    clients of its file at once, the screen and the background service (docs/sync.md,
    "Several clients of one file"). The first push holds the change counter and at its end
    flags the device's clock (``clock_skew_at``, the device's row); the second, six minutes
    after the pad was last seen, notes the device seen (``last_seen_at``, the same row). Both
    answer 200, one after the other, and the device's row holds both.

    Before, the second noted the device seen as it checked the token, before it asked for the
    change counter: it held the device's row while waiting for the counter, the first held the
    counter while waiting for the row, and one push answered 503 ``database_unavailable``."""
    from fieldapp.auth import operations as auth_ops
    from sync import engine

    app, world = pg_app
    signed = sign_in(app, "officer1", "pad-fast-clock")
    screen = Api(app.test_client(), signed.token, signed.device_id)
    service = Api(app.test_client(), signed.token, signed.device_id)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    fast = FakeDevice(screen, clock_ms=now_ms + 10 * 60_000)  # ten minutes fast
    other = FakeDevice(service, clock_ms=now_ms - 60_000)
    shop = add_shop(sign_in(app, "leader1", "pad-fast-clock-l"), world.squadrons[0].id, "快钟店")

    utcnow = auth_ops.utcnow

    def later_for_the_second():  # six minutes pass between the two sign-in checks
        if threading.current_thread().name == "second":
            return utcnow() + timedelta(minutes=6)
        return utcnow()

    monkeypatch.setattr(auth_ops, "utcnow", later_for_the_second)
    holding, second_done = threading.Event(), threading.Event()
    flag = engine._flag_skewed_devices

    def flag_once_the_second_waits(ctx):
        if threading.current_thread().name == "first":
            holding.set()
            until_there_or_waiting(second_done)
        return flag(ctx)

    monkeypatch.setattr(engine, "_flag_skewed_devices", flag_once_the_second_waits)

    def push(device):
        change = device.change(
            "inspection", uuid.uuid4(), new_inspection(world, ["officer1"], target_id=shop)
        )
        return device.push(change)

    def second():
        holding.wait(RACE_WAIT)
        try:
            return push(other)
        finally:
            second_done.set()

    answers = at_once(("first", lambda: push(fast)), ("second", second))
    monkeypatch.undo()
    bodies = {n: a.get_json() for n, a in answers.items() if hasattr(a, "get_json")}
    assert {n: status_of(a) for n, a in answers.items()} == {"first": 200, "second": 200}, bodies
    with app.app_context():
        device = db.session.get(Device, "pad-fast-clock")
        assert device.clock_skew_at is not None
        assert device.last_seen_at > datetime.now(UTC) + timedelta(minutes=5)  # the second's


def test_noting_a_pad_seen_does_not_wait_for_its_push(pg_app, monkeypatch):
    """A pad's background service pulls while its screen's push, which found the pad's clock
    fast, holds the device's row to flag it. The pull is due to note the pad seen
    (``last_seen_at``, a hint written at most every five minutes): it leaves the row to the
    push and answers at once, instead of waiting for the push to commit."""
    from fieldapp.auth import operations as auth_ops
    from sync import engine

    app, world = pg_app
    signed = sign_in(app, "officer1", "pad-seen-skip")
    screen = Api(app.test_client(), signed.token, signed.device_id)
    service = FakeDevice(Api(app.test_client(), signed.token, signed.device_id))
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    fast = FakeDevice(screen, clock_ms=now_ms + 10 * 60_000)

    utcnow = auth_ops.utcnow

    def later_for_the_pull():
        if threading.current_thread().name == "pull":
            return utcnow() + timedelta(minutes=6)
        return utcnow()

    monkeypatch.setattr(auth_ops, "utcnow", later_for_the_pull)
    holding, pulled = threading.Event(), threading.Event()
    pulled_while_held: list[bool] = []
    flag = engine._flag_skewed_devices

    def flag_and_hold_the_row(ctx):
        flag(ctx)
        db.session.flush()  # the device's row is locked from here to the push's commit
        holding.set()
        until_there_or_waiting(pulled)
        pulled_while_held.append(pulled.is_set())

    monkeypatch.setattr(engine, "_flag_skewed_devices", flag_and_hold_the_row)

    def pull():
        holding.wait(RACE_WAIT)
        try:
            return service.api.get("/api/v1/sync/pull")
        finally:
            pulled.set()

    change = fast.change("inspection", uuid.uuid4(), new_inspection(world, ["officer1"]))
    answers = at_once(("push", lambda: fast.push(change)), ("pull", pull))
    monkeypatch.undo()
    assert {n: status_of(a) for n, a in answers.items()} == {"push": 200, "pull": 200}
    assert pulled_while_held == [True]
