"""The global change sequence: every change gets a higher number, and numbers become visible
in the order they were handed out, also while writers race on PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldapp.db import change_counter, db
from fieldapp.targets.models import Target
from sync.sequence import allocate, hold, reserve
from tests.conftest import SYSTEM


def test_create_and_update_take_new_numbers_and_versions(ctx, world):
    target = db.session.get(Target, world.targets["shop1"].id)
    first_seq, first_version = target.change_seq, target.version
    target.name = "老王面馆（新店招）"
    db.session.flush()
    assert target.change_seq > first_seq
    assert target.version == first_version + 1
    # A flush with nothing changed renumbers nothing.
    seq = target.change_seq
    db.session.flush()
    assert target.change_seq == seq


def test_one_flush_numbers_each_row_once(ctx, world):
    from fieldapp.targets import operations

    created = [
        operations.create_target(
            SYSTEM,
            {
                "kind": "shop",
                "name": f"店{n}",
                "squadron_id": world.squadrons[0].id,
                "location": {"lon": 121.47, "lat": 31.37},
                "business_type": "retail",
            },
        )
        for n in range(3)
    ]
    seqs = [t.change_seq for t in created]
    assert len(set(seqs)) == 3 and seqs == sorted(seqs)


def test_allocate_refuses_nonsense(ctx):
    with pytest.raises(ValueError):
        allocate(db.session, change_counter, 0)


def _counter_value() -> int:
    return db.session.execute(sa.select(change_counter.c.value)).scalar_one()


def test_a_push_reserves_its_numbers_once_and_hands_them_out_in_order(ctx):
    reserve(db.session, change_counter, 10)
    after_reserving = _counter_value()
    firsts = [allocate(db.session, change_counter, n) for n in (3, 1, 4)]
    assert firsts == [after_reserving - 9, after_reserving - 6, after_reserving - 5]
    assert _counter_value() == after_reserving  # no counter update while the pool lasts
    # Numbers taken inside a savepoint that rolls back stay taken: a gap, never a repeat.
    with db.session.begin_nested() as savepoint:
        inside = allocate(db.session, change_counter, 1)
        savepoint.rollback()
    assert inside == after_reserving - 1
    beyond = allocate(db.session, change_counter, 2)  # one left: the counter gives two more
    assert beyond == after_reserving + 1 and _counter_value() == after_reserving + 2


def test_a_reservation_dies_with_its_transaction(app, ctx):
    reserve(db.session, change_counter, 100)
    db.session.rollback()  # the counter update is undone: so must the pool be
    start = _counter_value()
    assert allocate(db.session, change_counter, 1) == start + 1
    with db.session.begin_nested(), pytest.raises(RuntimeError):
        reserve(db.session, change_counter, 5)  # a rolled-back savepoint would hand them out twice


def test_holding_the_counter_takes_no_number_and_updates_it_once_a_transaction(ctx, monkeypatch):
    """A writer that reads before it writes takes the counter first (``hold``): the lock
    only, no number is used up, and holding again in the same transaction costs nothing."""
    import sync.sequence

    asked: list[int] = []
    take = sync.sequence._take
    monkeypatch.setattr(sync.sequence, "_take", lambda *args: asked.append(args[2]) or take(*args))
    start = _counter_value()
    hold(db.session, change_counter)
    hold(db.session, change_counter)
    assert asked == [0] and _counter_value() == start
    assert allocate(db.session, change_counter, 1) == start + 1  # numbers go on as before
    with db.session.begin_nested():
        hold(db.session, change_counter)  # held since before the savepoint
    assert asked == [0, 1]


def test_holding_the_counter_inside_a_savepoint_asks_every_time(ctx, monkeypatch):
    """A lock taken in a savepoint goes if the savepoint rolls back, so it is not counted on."""
    import sync.sequence

    asked: list[int] = []
    take = sync.sequence._take
    monkeypatch.setattr(sync.sequence, "_take", lambda *args: asked.append(args[2]) or take(*args))
    for _ in range(2):
        with db.session.begin_nested() as savepoint:
            hold(db.session, change_counter)
            savepoint.rollback()
    assert asked == [0, 0]


@pytest.mark.parametrize("first_takes", ["a number", "the lock only"])
def test_a_later_writer_waits_for_the_earlier_one_to_commit(app, backend, first_takes):
    """T1 takes a number (or only the counter's lock, as a writer that reads before it writes
    does) and holds its transaction open; T2 cannot get a number until T1 ends. So no reader
    can see T2's (higher) number while T1's (lower) one is still invisible."""
    if backend != "postgresql":
        pytest.skip("SQLite serializes writers anyway; the race matters on PostgreSQL")
    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    first_taken = threading.Event()
    events: list[tuple[str, int]] = []

    def first_writer():
        with Session(engine) as session:
            if first_takes == "a number":
                number = allocate(session, change_counter, 1)
            else:
                hold(session, change_counter)
                number = session.execute(sa.select(change_counter.c.value)).scalar_one()
            events.append(("t1 took", number))
            first_taken.set()
            time.sleep(0.5)
            events.append(("t1 commits", number))
            session.commit()

    def second_writer():
        first_taken.wait()
        with Session(engine) as session:
            number = allocate(session, change_counter, 1)
            events.append(("t2 took", number))
            session.commit()

    threads = [threading.Thread(target=first_writer), threading.Thread(target=second_writer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    engine.dispose()
    names = [name for name, _ in events]
    assert names == ["t1 took", "t1 commits", "t2 took"]
    assert events[2][1] == events[0][1] + 1


def test_a_rolled_back_number_is_reused_not_skipped(app, isolated):
    with app.app_context():
        savepoint = db.session.begin_nested()
        taken = allocate(db.session, change_counter, 5)
        savepoint.rollback()
        again = allocate(db.session, change_counter, 1)
    assert again == taken
