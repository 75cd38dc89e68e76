"""Batches of creates are written with ``insert_rows`` (COPY on PostgreSQL, one precompiled
executemany on SQLite): it must store what SQLAlchemy's INSERT stores."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from fieldapp.db import db, insert_rows
from sync.models import RecordVersion


def _stored(record_id):
    """The row as the database holds it: every column as text, as the database prints it."""
    table = RecordVersion.__table__
    columns = [c for c in table.columns if c.key not in ("id", "record_id")]
    row = db.session.execute(
        sa.select(
            *(sa.cast(c, sa.Text).label(c.key) for c in columns),
            table.c.changed.is_(None).label("changed_is_sql_null"),
        ).where(table.c.record_id == record_id)
    ).one()
    return row._asdict()


def test_insert_rows_stores_what_insert_stores(app):
    with app.app_context():
        try:
            by_insert, by_batch = uuid.uuid4(), uuid.uuid4()

            def row(record_id):
                # ``changed`` left out (its default applies); JSON with nulls, text, numbers.
                return {
                    "entity": "inspection",
                    "record_id": record_id,
                    "version": 3,
                    "data": {"findings": "店门外\t堆放\n纸箱\\", "score": None, "lon": 121.47},
                    "change_id": uuid.UUID("0b8f7c1e-9a41-4c6e-8d2f-3a5b7c9d1e2f"),
                    "device_id": "pad-1",
                    "user_id": None,
                    "hlc": None,
                    "at": datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
                }

            connection = db.session.connection()
            connection.execute(sa.insert(RecordVersion.__table__), [row(by_insert)])
            insert_rows(connection, RecordVersion.__table__, [row(by_batch)])
            assert _stored(by_batch) == _stored(by_insert)
            assert _stored(by_batch)["changed"] == "[]"
            # None given for a JSON column: INSERT stores JSON null, not SQL NULL, and so must we.
            null_insert, null_batch = uuid.uuid4(), uuid.uuid4()
            connection.execute(
                sa.insert(RecordVersion.__table__), [row(null_insert) | {"changed": None}]
            )
            insert_rows(connection, RecordVersion.__table__, [row(null_batch) | {"changed": None}])
            assert _stored(null_batch) == _stored(null_insert)

            # A taken key is SQLAlchemy's IntegrityError, as with INSERT (the batch falls back).
            taken = db.session.scalar(
                sa.select(RecordVersion.id).where(RecordVersion.record_id == by_batch)
            )
            with pytest.raises(sa.exc.IntegrityError), db.session.begin_nested():
                insert_rows(
                    db.session.connection(),
                    RecordVersion.__table__,
                    [row(uuid.uuid4()) | {"id": taken}],
                )
        finally:
            db.session.rollback()
