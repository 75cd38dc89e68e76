"""audit: the hash-chained, append-only log; case-file reviews (案卷评查); supervision orders (督办单)

Existing audit entries are renumbered 1..n in their order and chained; from here on the chain
head hands out numbers (no sequence). ``before``/``after`` become plain ``json`` on PostgreSQL so
that values read back exactly as they were hashed. Triggers refuse UPDATE and DELETE of entries
(and TRUNCATE on PostgreSQL) and any move of the chain head backwards.

NOTE for later migrations: on SQLite, ``batch_alter_table("audit_entries")`` rebuilds the table
and loses its triggers; re-create them with :func:`create_triggers` afterwards.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21 09:43:22.262162

"""

from types import SimpleNamespace

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import fieldapp.db
from fieldapp.audit import chain

# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64

PG_TRIGGERS = """
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE FUNCTION audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.id <> OLD.id OR NEW.seq < OLD.seq THEN
        RAISE EXCEPTION 'the audit chain head only moves forward: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_chain_head_forward_only BEFORE UPDATE OR DELETE ON audit_chain_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only();
CREATE TRIGGER audit_chain_head_no_truncate BEFORE TRUNCATE ON audit_chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
"""

SQLITE_TRIGGERS = [
    "CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE refused'); END",
    "CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE refused'); END",
    "CREATE TRIGGER audit_chain_head_forward_only BEFORE UPDATE ON audit_chain_head "
    "WHEN NEW.seq < OLD.seq OR NEW.id <> OLD.id "
    "BEGIN SELECT RAISE(ABORT, 'the audit chain head only moves forward'); END",
    "CREATE TRIGGER audit_chain_head_no_delete BEFORE DELETE ON audit_chain_head "
    "BEGIN SELECT RAISE(ABORT, 'the audit chain head only moves forward'); END",
]


def create_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_TRIGGERS)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def drop_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries")
        op.execute("DROP TRIGGER IF EXISTS audit_entries_no_truncate ON audit_entries")
        op.execute("DROP TRIGGER IF EXISTS audit_chain_head_forward_only ON audit_chain_head")
        op.execute("DROP TRIGGER IF EXISTS audit_chain_head_no_truncate ON audit_chain_head")
        op.execute("DROP FUNCTION IF EXISTS audit_refuse_change()")
        op.execute("DROP FUNCTION IF EXISTS audit_head_forward_only()")
    else:
        for name in (
            "audit_entries_no_update",
            "audit_entries_no_delete",
            "audit_chain_head_forward_only",
            "audit_chain_head_no_delete",
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def _chain_existing(head: sa.Table) -> None:
    """Renumber the entries written before the chain existed 1..n and chain them."""
    bind = op.get_bind()
    entries = sa.table(
        "audit_entries",
        *(sa.column(name) for name in ("seq", "request_id", "hash", "prev_hash")),
        sa.column("at", fieldapp.db.UTCDateTime()),
        sa.column("actor_id", sa.Uuid()),
        sa.column("device_id"),
        sa.column("action"),
        sa.column("entity"),
        sa.column("record_id"),
        sa.column("before", sa.JSON()),
        sa.column("after", sa.JSON()),
    )
    rows = [dict(row._mapping) for row in bind.execute(sa.select(entries).order_by(entries.c.seq))]
    prev_hash = GENESIS_HASH
    for seq, row in enumerate(rows, start=1):
        row.update(seq=seq, prev_hash=prev_hash)
        row["hash"] = prev_hash = chain.entry_hash(SimpleNamespace(**row))
    if rows:
        bind.execute(sa.delete(entries))
        bind.execute(sa.insert(entries), rows)
    bind.execute(sa.insert(head), [{"id": 1, "seq": len(rows), "hash": prev_hash}])


def upgrade():
    head = op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    if op.get_bind().dialect.name == "postgresql":
        for column in ("before", "after"):
            op.execute(
                f'ALTER TABLE audit_entries ALTER COLUMN "{column}" TYPE json USING "{column}"::json'
            )
        op.execute("ALTER TABLE audit_entries ALTER COLUMN seq DROP DEFAULT")
        op.execute("DROP SEQUENCE IF EXISTS audit_entries_seq_seq")
    _chain_existing(head)
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.alter_column("prev_hash", existing_type=sa.VARCHAR(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.VARCHAR(length=64), nullable=False)
        batch_op.create_index("ix_audit_entries_at", ["at"], unique=False)
        batch_op.drop_index("ix_audit_entries_entity_record")
        batch_op.drop_index("ix_audit_entries_actor_id")
        batch_op.create_index(
            "ix_audit_entries_entity_record_seq", ["entity", "record_id", "seq"], unique=False
        )
        batch_op.create_index("ix_audit_entries_actor_seq", ["actor_id", "seq"], unique=False)
    create_triggers()
    create_supervision_tables()


def create_supervision_tables():
    op.create_table(
        "case_reviews",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("inspection_id", sa.Uuid(), nullable=False),
        sa.Column("squadron_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Uuid(), nullable=False),
        sa.Column(
            "verdict",
            sa.Enum(
                "compliant", "deficient", name="verdict", native_enum=False, create_constraint=True
            ),
            nullable=False,
        ),
        sa.Column(
            "findings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inspection_id"],
            ["inspections.id"],
            name=op.f("fk_case_reviews_inspection_id_inspections"),
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["users.id"], name=op.f("fk_case_reviews_reviewer_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["squadron_id"], ["squadrons.id"], name=op.f("fk_case_reviews_squadron_id_squadrons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_reviews")),
    )
    with op.batch_alter_table("case_reviews", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_case_reviews_inspection_id"), ["inspection_id"], unique=False
        )
        batch_op.create_index(
            "ix_case_reviews_squadron_created", ["squadron_id", "created_at"], unique=False
        )

    op.create_table(
        "supervision_orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("squadron_id", sa.Integer(), nullable=False),
        sa.Column("issued_by_id", sa.Uuid(), nullable=False),
        sa.Column("inspection_id", sa.Uuid(), nullable=True),
        sa.Column("target_id", sa.Uuid(), nullable=True),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("deadline", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "answered",
                "closed",
                name="orderstatus",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("issued_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("answered_by_id", sa.Uuid(), nullable=True),
        sa.Column("answered_at", fieldapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", fieldapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "history",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "inspection_id IS NOT NULL OR target_id IS NOT NULL OR case_id IS NOT NULL",
            name=op.f("ck_supervision_orders_has_subject"),
        ),
        sa.ForeignKeyConstraint(
            ["answered_by_id"],
            ["users.id"],
            name=op.f("fk_supervision_orders_answered_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_supervision_orders_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["inspection_id"],
            ["inspections.id"],
            name=op.f("fk_supervision_orders_inspection_id_inspections"),
        ),
        sa.ForeignKeyConstraint(
            ["issued_by_id"], ["users.id"], name=op.f("fk_supervision_orders_issued_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["squadron_id"],
            ["squadrons.id"],
            name=op.f("fk_supervision_orders_squadron_id_squadrons"),
        ),
        sa.ForeignKeyConstraint(
            ["target_id"], ["targets.id"], name=op.f("fk_supervision_orders_target_id_targets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supervision_orders")),
    )
    with op.batch_alter_table("supervision_orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_supervision_orders_squadron_status",
            ["squadron_id", "status", "deadline"],
            unique=False,
        )
        batch_op.create_index(
            "ix_supervision_orders_status_deadline", ["status", "deadline"], unique=False
        )


def downgrade():
    drop_triggers()
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_at")
        batch_op.drop_index("ix_audit_entries_actor_seq")
        batch_op.drop_index("ix_audit_entries_entity_record_seq")
        batch_op.create_index("ix_audit_entries_actor_id", ["actor_id"], unique=False)
        batch_op.create_index(
            "ix_audit_entries_entity_record", ["entity", "record_id"], unique=False
        )
        batch_op.alter_column("hash", existing_type=sa.VARCHAR(length=64), nullable=True)
        batch_op.alter_column("prev_hash", existing_type=sa.VARCHAR(length=64), nullable=True)
    if op.get_bind().dialect.name == "postgresql":
        for column in ("before", "after"):
            op.execute(
                f'ALTER TABLE audit_entries ALTER COLUMN "{column}" TYPE jsonb USING "{column}"::jsonb'
            )
        op.execute("CREATE SEQUENCE audit_entries_seq_seq OWNED BY audit_entries.seq")
        op.execute(
            "SELECT setval('audit_entries_seq_seq', COALESCE((SELECT max(seq) FROM audit_entries), 0) + 1, false)"
        )
        op.execute(
            "ALTER TABLE audit_entries ALTER COLUMN seq SET DEFAULT nextval('audit_entries_seq_seq')"
        )

    with op.batch_alter_table("supervision_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_supervision_orders_status_deadline")
        batch_op.drop_index("ix_supervision_orders_squadron_status")
    op.drop_table("supervision_orders")
    with op.batch_alter_table("case_reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_case_reviews_squadron_created")
        batch_op.drop_index(batch_op.f("ix_case_reviews_inspection_id"))
    op.drop_table("case_reviews")
    op.drop_table("audit_chain_head")
