"""scope exits: one removal per record and squadron it left, so a target that moves twice before
the first squadron's devices pull still leaves them

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 09:00:00

"""

import sqlalchemy as sa
from alembic import op

import fieldapp.db

# revision identifiers, used by Alembic.
revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sync_scope_exits",
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("squadron_id", sa.Integer(), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("left_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("moved_by_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["moved_by_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["squadron_id"], ["squadrons.id"]),
        sa.PrimaryKeyConstraint("entity", "record_id", "squadron_id"),
    )
    with op.batch_alter_table("sync_scope_exits", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sync_scope_exits_change_seq"), ["change_seq"], unique=False
        )
        batch_op.create_index(
            "ix_sync_scope_exits_squadron_seq", ["squadron_id", "change_seq"], unique=False
        )
    # Until now a target's latest move out of a squadron was kept as its tombstone: the target
    # still exists, so those rows are scope exits.
    op.execute(
        "INSERT INTO sync_scope_exits"
        " (entity, record_id, squadron_id, change_seq, version, left_at, moved_by_id)"
        " SELECT entity, record_id, squadron_id, change_seq, version, deleted_at, deleted_by_id"
        " FROM sync_tombstones WHERE entity = 'target' AND squadron_id IS NOT NULL"
        " AND record_id IN (SELECT id FROM targets)"
    )
    op.execute(
        "DELETE FROM sync_tombstones WHERE entity = 'target'"
        " AND record_id IN (SELECT id FROM targets)"
    )


def downgrade():
    with op.batch_alter_table("sync_scope_exits", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_scope_exits_squadron_seq")
        batch_op.drop_index(batch_op.f("ix_sync_scope_exits_change_seq"))
    op.drop_table("sync_scope_exits")
