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
from sync.sequence import allocate
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


def test_a_later_writer_waits_for_the_earlier_one_to_commit(app, backend):
    """T1 takes a number and holds its transaction open; T2 cannot get a number until T1 ends.
    So no reader can see T2's (higher) number while T1's (lower) one is still invisible."""
    if backend != "postgresql":
        pytest.skip("SQLite serializes writers anyway; the race matters on PostgreSQL")
    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    first_taken = threading.Event()
    events: list[tuple[str, int]] = []

    def first_writer():
        with Session(engine) as session:
            number = allocate(session, change_counter, 1)
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
