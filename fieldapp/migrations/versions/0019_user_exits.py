"""user exits: a record that leaves one user's scope where no squadron's removal reaches them
(a co-officer from another squadron dropped from an inspection, or the inspection deleted; the
target of a task elsewhere once the task is closed) is served to that user as a delete

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 09:30:00.000000

One row per record and user, the latest exit; pull reads a user's rows down
(user_id, change_seq).
"""

import sqlalchemy as sa
from alembic import op

import fieldapp.db

# revision identifiers, used by Alembic.
revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sync_user_exits",
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("left_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("moved_by_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["moved_by_id"], ["users.id"], name=op.f("fk_sync_user_exits_moved_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sync_user_exits_user_id_users")
        ),
        sa.PrimaryKeyConstraint("entity", "record_id", "user_id", name=op.f("pk_sync_user_exits")),
    )
    with op.batch_alter_table("sync_user_exits", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sync_user_exits_change_seq"), ["change_seq"], unique=False
        )
        batch_op.create_index(
            "ix_sync_user_exits_user_seq", ["user_id", "change_seq"], unique=False
        )


def downgrade():
    with op.batch_alter_table("sync_user_exits", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_user_exits_user_seq")
        batch_op.drop_index(batch_op.f("ix_sync_user_exits_change_seq"))
    op.drop_table("sync_user_exits")
