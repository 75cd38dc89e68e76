"""audit entries name the district whose supervisors read them (the district of the record
they are about, else of their actor), so an officer transferred to another district takes
none of the old district's history along

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05 18:00:00.000000

``district_id`` is stored beside the hashed fields, not hashed (the hash recipe does not
change). Entries written before this migration are placed as well as can be told now: by
where their record is now (a target moved to another district since takes its old entries
along), else by their actor's district now (for an actor transferred since, their new one);
entries of no record of a district by no user (operator commands) stay without one.

A plain ADD COLUMN, no table rebuild: SQLite keeps the append-only triggers, and a long log
is not copied. The UPDATE trigger is switched off while the column is filled, then back on.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

#: entity -> (table whose id the entry's record_id names, the column leading to the district)
RECORD_DISTRICTS = {
    "inspection": ("inspections", "squadron_id"),
    "target": ("targets", "squadron_id"),
    "risk": ("targets", "squadron_id"),
    "task": ("tasks", "squadron_id"),
    "complaint": ("complaints", "squadron_id"),
    "photo": ("photos", "squadron_id"),
    "case": ("cases", "squadron_id"),
    "case_review": ("case_reviews", "squadron_id"),
    "supervision_order": ("supervision_orders", "squadron_id"),
    "conflict": ("conflicts", "squadron_id"),
    "squadron": ("squadrons", "district_id"),
    "district": ("districts", "id"),
    "draw": ("draws", "district_id"),
    "user": ("users", "district_id"),
    "device": ("devices", "last_user_id"),
}

#: Tables whose id is an integer (the rest are UUIDs, and devices' a string).
INTEGER_IDS = {"squadrons", "districts"}

SQLITE_NO_UPDATE = (
    "CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE refused'); END"
)


def _source(table: str, via: str) -> tuple[str, str]:
    """The FROM clause (aliased ``t``) and the district expression of records of ``table``."""
    if via == "squadron_id":
        return f"{table} t JOIN squadrons s ON s.id = t.squadron_id", "s.district_id"
    if via == "last_user_id":
        return f"{table} t JOIN users u ON u.id = t.last_user_id", "u.district_id"
    return f"{table} t", f"t.{via}"


def _fill_postgresql() -> None:
    for entity, (table, via) in RECORD_DISTRICTS.items():
        source, district = _source(table, via)
        # Compared as text (a record_id need not be a UUID): one hash join per kind of record.
        op.execute(
            f"UPDATE audit_entries a SET district_id = {district} FROM {source}"
            f" WHERE a.entity = '{entity}' AND a.district_id IS NULL"
            " AND a.record_id = t.id::text"
        )


def _fill_sqlite() -> None:
    for entity, (table, via) in RECORD_DISTRICTS.items():
        source, district = _source(table, via)
        if table in INTEGER_IDS:
            record = "CAST(audit_entries.record_id AS INTEGER)"
        elif table == "devices":
            record = "audit_entries.record_id"
        else:  # UUIDs are stored as 32 hex digits
            record = "replace(audit_entries.record_id, '-', '')"
        op.execute(
            f"UPDATE audit_entries SET district_id = (SELECT {district} FROM {source}"
            f" WHERE t.id = {record}) WHERE entity = '{entity}' AND district_id IS NULL"
        )


def upgrade():
    op.add_column("audit_entries", sa.Column("district_id", sa.Integer(), nullable=True))
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only")
        _fill_postgresql()
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_entries_no_update")
        _fill_sqlite()
    op.execute(
        "UPDATE audit_entries SET district_id ="
        " (SELECT users.district_id FROM users WHERE users.id = audit_entries.actor_id)"
        " WHERE district_id IS NULL AND actor_id IS NOT NULL"
    )
    if postgresql:
        op.execute("ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only")
    else:
        op.execute(SQLITE_NO_UPDATE)
    op.create_index(
        "ix_audit_entries_district_seq", "audit_entries", ["district_id", "seq"], unique=False
    )


def downgrade():
    op.drop_index("ix_audit_entries_district_seq", table_name="audit_entries")
    # SQLite drops a column in place (3.35+), triggers and all rows kept.
    op.drop_column("audit_entries", "district_id")
