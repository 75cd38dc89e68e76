"""removals served: how far each device has been served its user's scope exits, and when, so a
push can tell an inspection begun before the pad knew its shop had moved (applied) from one
begun after (refused)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 17:00:00.000000

One row per device and user; written by pull pages that carry a scope exit.
"""

import sqlalchemy as sa
from alembic import op

import fieldapp.db

# revision identifiers, used by Alembic.
revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sync_removals_served",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("served_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_sync_removals_served_device_id_devices")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sync_removals_served_user_id_users")
        ),
        sa.PrimaryKeyConstraint("device_id", "user_id", name=op.f("pk_sync_removals_served")),
    )


def downgrade():
    op.drop_table("sync_removals_served")
