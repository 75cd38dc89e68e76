"""review: cancelled tasks keep their reason; indexes for the review, rectification and task
lists; one case per inspection

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-21 09:40:53

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_cases_inspection_id"), ["inspection_id"])

    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.create_index("ix_inspections_follow_up_of", ["follow_up_of"], unique=False)
        batch_op.create_index(
            "ix_inspections_squadron_rectification",
            ["squadron_id", "outcome", "rectification_deadline"],
            unique=False,
        )
        batch_op.create_index(
            "ix_inspections_squadron_started", ["squadron_id", "started_at"], unique=False
        )

    op.add_column("tasks", sa.Column("cancel_reason", sa.Text(), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        # The foreign key inline in a plain ADD COLUMN: a separate constraint would make SQLite
        # rebuild the tasks table, whose old copy's drop cascades to task_assignees.
        op.execute(
            "ALTER TABLE tasks ADD COLUMN cancelled_by_id CHAR(32)"
            " CONSTRAINT fk_tasks_cancelled_by_id_users REFERENCES users (id)"
        )
    else:
        op.add_column("tasks", sa.Column("cancelled_by_id", sa.Uuid(), nullable=True))
        op.create_foreign_key(
            "fk_tasks_cancelled_by_id_users", "tasks", "users", ["cancelled_by_id"], ["id"]
        )
    op.create_index("ix_tasks_squadron_status_due", "tasks", ["squadron_id", "status", "due"])


def downgrade():
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_squadron_status_due")
        if op.get_bind().dialect.name != "sqlite":  # SQLite's rebuild leaves it out anyway
            batch_op.drop_constraint("fk_tasks_cancelled_by_id_users", type_="foreignkey")
        batch_op.drop_column("cancelled_by_id")
        batch_op.drop_column("cancel_reason")

    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.drop_index("ix_inspections_squadron_started")
        batch_op.drop_index("ix_inspections_squadron_rectification")
        batch_op.drop_index("ix_inspections_follow_up_of")

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_cases_inspection_id"), type_="unique")
