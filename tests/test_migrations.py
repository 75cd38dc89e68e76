"""Migrations: upgrading an empty database gives exactly the schema the models describe."""

from __future__ import annotations

import contextlib
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from fieldapp import create_app
from fieldapp.audit import operations as audit_ops
from fieldapp.db import db
from fieldapp.inspections.models import Inspection, inspection_officers
from tests.conftest import FAST_PASSWORDS, scratch_pg_database


def test_upgrade_from_empty_matches_the_models(app):
    # The session database of each backend was built by `upgrade()` alone.
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


def test_downgrade_to_empty_and_up_again(tmp_path, monkeypatch):
    monkeypatch.setenv("FIELDAPP_INSTANCE_PATH", str(tmp_path))
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.sqlite3'}", **FAST_PASSWORDS}
    )
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        assert sa.inspect(db.engine).get_table_names() == ["alembic_version"]
        upgrade()
        counter = db.session.execute(sa.text("SELECT value FROM sync_change_counter")).scalar_one()
        assert counter == 0
        db.session.remove()
        db.engine.dispose()


def officer_lists() -> dict:
    """Each inspection's officer ids as it lists them, checked against its link rows."""
    links = inspection_officers.c
    ordered: dict = {}
    for inspection_id, user_id in db.session.execute(
        sa.select(links.inspection_id, links.user_id).order_by(links.position)
    ):
        ordered.setdefault(inspection_id, []).append(str(user_id))
    listed = dict(db.session.execute(sa.select(Inspection.id, Inspection.officer_ids)).all())
    assert listed == {i: ordered.get(i, []) for i in listed}
    return listed


def test_upgrading_and_downgrading_keep_the_rows_that_reference_altered_tables(
    tmp_path, monkeypatch
):
    """SQLite alters a table by copying it; the copy must not cascade-delete its children."""
    from fieldapp.demo.builder import SCALES, DemoBuilder

    monkeypatch.setenv("FIELDAPP_INSTANCE_PATH", str(tmp_path))
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.sqlite3'}", **FAST_PASSWORDS}
    )
    children = ("task_assignees", "inspection_officers", "tasks", "inspections", "targets")

    def counts() -> dict:
        return {
            table: db.session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in children
        }

    with app.app_context():
        upgrade()
        DemoBuilder(SCALES["small"], seed=3).build(app.extensions["fieldapp.auth"].password_hasher)
        db.session.commit()
        before = counts()
        assert before["task_assignees"] > 0 and before["inspection_officers"] > 0
        listed = officer_lists()
        assert all(listed.values())
        db.session.remove()
        downgrade(revision="0005")
        assert counts() == before
        db.session.remove()
        upgrade()
        assert counts() == before
        # Each inspection's list of officers is rebuilt from its links, order included.
        assert officer_lists() == listed
        foreign_keys = db.session.execute(sa.text("PRAGMA foreign_keys")).scalar_one()
        assert foreign_keys == 1  # back on for the application
        db.session.remove()
        db.engine.dispose()


@contextlib.contextmanager
def postgresql_demo_database(tmp_path, monkeypatch):
    """A scratch PostgreSQL database, upgraded and filled with the small demo, in app context."""
    from fieldapp.demo.builder import SCALES, DemoBuilder

    monkeypatch.setenv("FIELDAPP_INSTANCE_PATH", str(tmp_path))
    with scratch_pg_database("migration test") as url:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, **FAST_PASSWORDS})
        with app.app_context():
            upgrade()
            DemoBuilder(SCALES["small"], seed=3).build(
                app.extensions["fieldapp.auth"].password_hasher
            )
            db.session.commit()
            try:
                yield app
            finally:
                db.session.remove()
                db.engine.dispose()


def test_postgresql_rebuilds_the_officer_lists_from_the_links(tmp_path, monkeypatch):
    """Migration 0012 lists each inspection's officers in link order; PostgreSQL does it in
    one statement (SQLite's run is in the test above)."""
    with postgresql_demo_database(tmp_path, monkeypatch):
        listed = officer_lists()
        assert any(len(officers) > 1 for officers in listed.values())
        db.session.remove()
        downgrade(revision="0011")
        upgrade()
        assert officer_lists() == listed


def test_postgresql_keeps_inspection_json_values_across_its_change_of_type(tmp_path, monkeypatch):
    """Migration 0013 stores inspections' JSON as written (json, not jsonb) on PostgreSQL:
    every value reads back the same after the upgrade and after the downgrade, and the
    columns keep their defaults."""
    columns = ("location_original", "answers", "photo_ids", "flags", "field_clocks", "officer_ids")

    def values() -> dict:
        query = sa.select(Inspection.id, *(getattr(Inspection, name) for name in columns))
        return {row[0]: tuple(row[1:]) for row in db.session.execute(query)}

    def column_types() -> set:
        return {
            column["type"].__class__.__name__
            for column in sa.inspect(db.engine).get_columns("inspections")
            if column["name"] in columns
        }

    with postgresql_demo_database(tmp_path, monkeypatch):
        stored = values()
        assert any(answers for _, answers, *_ in stored.values())
        assert column_types() == {"JSON"}
        db.session.remove()
        downgrade(revision="0012")
        assert column_types() == {"JSONB"}
        assert values() == stored
        db.session.remove()
        upgrade()
        assert column_types() == {"JSON"}
        assert values() == stored
        defaults = dict(
            db.session.execute(
                sa.text(
                    "SELECT column_name, column_default FROM information_schema.columns"
                    " WHERE table_name = 'inspections'"
                    " AND column_name IN ('field_clocks', 'officer_ids')"
                )
            ).all()
        )
        assert defaults == {"field_clocks": "'{}'::json", "officer_ids": "'[]'::json"}


def test_postgresql_rewrites_inspection_json_stored_by_jsonb_compact(tmp_path, monkeypatch):
    """Migration 0014: inspections stored while the columns were jsonb are pulled as compact as
    the ones the server writes, with the same values; text the server wrote stays as it is."""
    from fieldapp import jsontext

    columns = ("location_original", "answers", "photo_ids", "flags", "field_clocks", "officer_ids")
    texts = sa.text(f"SELECT id, {', '.join(f'{c}::text' for c in columns)} FROM inspections")

    def stored() -> dict:
        return {row[0]: tuple(row[1:]) for row in db.session.execute(texts)}

    with postgresql_demo_database(tmp_path, monkeypatch):
        db.session.remove()
        downgrade(revision="0012")
        upgrade(revision="0013")
        # Written by the server after 0013: compact, with a note that holds what jsonb's
        # spacing looks like.
        tricky = {"S01": {"result": "fail", "note": '写着 "a": 1, "b": 2'}}
        tricky_id = db.session.scalars(sa.select(Inspection.id).limit(1)).one()
        db.session.execute(  # (the models are the newest schema's: plain SQL at 0013)
            sa.text("UPDATE inspections SET answers = CAST(:answers AS json) WHERE id = :id"),
            {"answers": jsontext.dumps(tricky), "id": tricky_id},
        )
        db.session.commit()
        db.session.remove()
        before = stored()
        assert any(": " in text for row in before.values() for text in row if text)
        db.session.remove()  # (the upgrade alters tables: no transaction may hold them)

        upgrade()

        after = stored()
        assert after.keys() == before.keys()
        for inspection_id, row in after.items():
            for text, old in zip(row, before[inspection_id], strict=True):
                assert (text is None) == (old is None)
                if text is not None:
                    assert jsontext.loads(text) == jsontext.loads(old)
                    assert text == jsontext.dumps(jsontext.loads(text))  # compact
        assert jsontext.loads(after[tricky_id][1]) == tricky
        assert after[tricky_id][1] == before[tricky_id][1]  # answers, as the server wrote them


def _first_submissions() -> dict:
    query = sa.select(Inspection.id, Inspection.submitted_at, Inspection.first_submitted_at)
    return {row.id: (row.submitted_at, row.first_submitted_at) for row in db.session.execute(query)}


def test_first_submissions_are_filled_in_from_the_last_on_both_databases(tmp_path, monkeypatch):
    """Migration 0020: inspections stored before it take their submission as their first (a
    draft has neither), on SQLite and on PostgreSQL, down and up again."""
    from fieldapp.demo.builder import SCALES, DemoBuilder

    monkeypatch.setenv("FIELDAPP_INSTANCE_PATH", str(tmp_path))
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.sqlite3'}", **FAST_PASSWORDS}
    )
    with app.app_context():
        upgrade()
        DemoBuilder(SCALES["small"], seed=3).build(app.extensions["fieldapp.auth"].password_hasher)
        db.session.commit()
        _assert_first_submissions_survive_0020()
        db.session.remove()
        db.engine.dispose()
    with postgresql_demo_database(tmp_path, monkeypatch):
        _assert_first_submissions_survive_0020()


def _assert_first_submissions_survive_0020() -> None:
    before = _first_submissions()
    assert before and all(first == last for last, first in before.values())
    assert any(last is not None for last, _ in before.values())
    db.session.remove()
    downgrade(revision="0019")
    upgrade()
    assert _first_submissions() == before


def _entry_districts() -> dict:
    rows = db.session.execute(sa.text("SELECT seq, entity, district_id FROM audit_entries"))
    return {seq: (entity, district_id) for seq, entity, district_id in rows}


def _record_one_entry_per_kind_of_record() -> None:
    """Entries about a record of each kind the demo has (by the operator, which names no
    district of its own), one about a record that is gone (by a user: their district) and
    one about nothing (no district)."""
    from fieldapp.actor import Actor
    from fieldapp.auth.models import User

    system = Actor.for_system("test")
    for entity, (table, _) in audit_ops.RECORD_DISTRICTS.items():
        record_id = db.session.scalar(sa.select(db.metadata.tables[table].c.id).limit(1))
        if record_id is not None:
            audit_ops.record(system, f"{entity}.test", entity, record_id)
    user = db.session.scalars(sa.select(User).limit(1)).one()
    audit_ops.record(Actor(user=user), "inspection.delete", "inspection", uuid.uuid4())
    audit_ops.record(system, "risk.recompute", "risk_settings", None)
    db.session.commit()


def _assert_0026_places_entries_as_the_application_does() -> None:
    _record_one_entry_per_kind_of_record()
    written = _entry_districts()
    placed = {entity for entity, district_id in written.values() if district_id is not None}
    assert {"inspection", "target", "risk", "task", "user", "squadron", "district"} <= placed
    assert None in {district_id for _, district_id in written.values()}
    db.session.remove()
    downgrade(revision="0025")
    upgrade()
    assert _entry_districts() == written
    verdict = audit_ops.verify(db.session())
    assert verdict.ok, verdict  # the hashes never covered the new column


def test_existing_audit_entries_are_placed_in_their_districts_on_both_databases(
    tmp_path, monkeypatch
):
    """Migration 0026: entries written before it get the district the application gives an
    entry (its record's, else its actor's), kind of record by kind of record, with the
    append-only triggers back on afterwards; on SQLite and on PostgreSQL."""
    from fieldapp.demo.builder import SCALES, DemoBuilder

    monkeypatch.setenv("FIELDAPP_INSTANCE_PATH", str(tmp_path))
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.sqlite3'}", **FAST_PASSWORDS}
    )
    with app.app_context():
        upgrade()
        DemoBuilder(SCALES["small"], seed=3).build(app.extensions["fieldapp.auth"].password_hasher)
        db.session.commit()
        _assert_0026_places_entries_as_the_application_does()
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            db.session.execute(sa.text("UPDATE audit_entries SET district_id = NULL"))
        db.session.remove()
        db.engine.dispose()
    with postgresql_demo_database(tmp_path, monkeypatch):
        _assert_0026_places_entries_as_the_application_does()
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            db.session.execute(sa.text("UPDATE audit_entries SET district_id = NULL"))
        db.session.rollback()
