"""pull indexes: a squadron's changes after a cursor come straight off one index, so a pull page
costs the same with a million records stored as with ten thousand

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 07:12:40.639969

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inspections_squadron_seq", ["squadron_id", "change_seq"], unique=False
        )

    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.create_index("ix_photos_squadron_seq", ["squadron_id", "change_seq"], unique=False)

    with op.batch_alter_table("sync_tombstones", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_tombstones_squadron_seq", ["squadron_id", "change_seq"], unique=False
        )

    with op.batch_alter_table("targets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_targets_squadron_seq", ["squadron_id", "change_seq"], unique=False
        )

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_squadron_seq", ["squadron_id", "change_seq"], unique=False)


def downgrade():
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_squadron_seq")

    with op.batch_alter_table("targets", schema=None) as batch_op:
        batch_op.drop_index("ix_targets_squadron_seq")

    with op.batch_alter_table("sync_tombstones", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_tombstones_squadron_seq")

    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_index("ix_photos_squadron_seq")

    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.drop_index("ix_inspections_squadron_seq")
