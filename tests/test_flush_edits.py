"""A batch's edits are written with one UPDATE per set of changed columns
(``fieldapp.db.flush_edits``): each record must end as the ORM's own flush leaves it, and a row
another writer changed since it was loaded must fail the batch as the ORM's flush would."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm.exc import StaleDataError

from fieldapp.db import db, flush_edits
from fieldapp.inspections.models import Inspection
from tests.sync_helpers import FakeDevice


@pytest.fixture
def three_inspections(login, world):
    return FakeDevice(login("officer1")).create_inspections(world, ["officer1"], 3)


def _stored(ids):
    db.session.expire_all()
    return {i: db.session.get(Inspection, i) for i in ids}


def test_edits_end_as_a_flush_leaves_them(app, three_inspections):
    with app.app_context():
        before = {
            i: (r.version, r.change_seq, r.updated_at)
            for i, r in _stored(three_inspections).items()
        }
        first, second, third = (db.session.get(Inspection, i) for i in three_inspections)
        first.findings, second.findings = "门口堆放纸箱", "占道经营"
        third.outcome, third.findings = "corrected_on_site", "已当场整改"
        flush_edits(db.session())
        # Nothing is left for the ORM to write: no second UPDATE, no second version.
        assert not any(db.session.is_modified(r) for r in (first, second, third))
        assert {r.version for r in (first, second, third)} == {2}
        db.session.commit()

        stored = _stored(three_inspections)
        assert [stored[i].findings for i in three_inspections] == [
            "门口堆放纸箱",
            "占道经营",
            "已当场整改",
        ]
        assert stored[three_inspections[2]].outcome.value == "corrected_on_site"
        seqs = [stored[i].change_seq for i in three_inspections]
        assert len(set(seqs)) == 3  # each edit is a change of its own for pull cursors
        for i in three_inspections:
            version, _, updated_at = before[i]
            assert stored[i].version == version + 1
            assert stored[i].change_seq > max(s for _, s, _ in before.values())
            assert stored[i].updated_at > updated_at


def test_a_row_changed_since_it_was_loaded_is_stale_and_nothing_is_written(app, three_inspections):
    with app.app_context():
        mine, theirs = (db.session.get(Inspection, i) for i in three_inspections[:2])
        mine.findings, theirs.findings = "我的修改", "我的另一处修改"
        # Another writer committed a new version of one of them after it was loaded.
        with db.session.no_autoflush:
            db.session.execute(
                sa.update(Inspection.__table__)
                .where(Inspection.__table__.c.id == theirs.id)
                .values(version=Inspection.__table__.c.version + 1, findings="别人的修改")
            )
        with pytest.raises(StaleDataError):
            flush_edits(db.session())
        db.session.rollback()
        stored = _stored(three_inspections[:2])
        assert stored[mine.id].findings != "我的修改"
        assert stored[mine.id].version == 1


def test_objects_with_nothing_but_a_new_sequence_number_are_left_alone(app, three_inspections):
    with app.app_context():
        record = db.session.get(Inspection, three_inspections[0])
        seq = record.change_seq
        record.change_seq = seq  # set, unchanged
        flush_edits(db.session())
        db.session.commit()
        assert _stored([record.id])[record.id].version == 1


def test_edits_undone_with_their_savepoint_read_as_stored(app, three_inspections):
    """A batch undone after its edits were written (its savepoint rolled back) must not keep
    them in memory: the batch is applied again from what is stored."""
    with app.app_context():
        record = db.session.get(Inspection, three_inspections[0])
        original = record.findings
        savepoint = db.session.begin_nested()
        record.findings = "撤销的修改"
        flush_edits(db.session())
        assert record.version == 2
        savepoint.rollback()
        assert (record.findings, record.version) == (original, 1)
