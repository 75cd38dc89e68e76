"""review: cancelled tasks keep their reason; indexes for the review, rectification and task
lists; one case per inspection

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 09:40:53

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_cases_inspection_id"), ["inspection_id"])

    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inspections_squadron_rectification",
            ["squadron_id", "outcome", "rectification_deadline"],
            unique=False,
        )
        batch_op.create_index(
            "ix_inspections_squadron_started", ["squadron_id", "started_at"], unique=False
        )

    if op.get_bind().dialect.name == "sqlite":
        existing = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("tasks")}
        if "cancel_reason" not in existing:  # a downgrade on SQLite leaves them (see there)
            op.add_column("tasks", sa.Column("cancel_reason", sa.Text(), nullable=True))
            # The foreign key inline in a plain ADD COLUMN: a separate constraint would make
            # SQLite rebuild the tasks table (see the downgrade for why that hurts).
            op.execute(
                "ALTER TABLE tasks ADD COLUMN cancelled_by_id CHAR(32)"
                " CONSTRAINT fk_tasks_cancelled_by_id_users REFERENCES users (id)"
            )
    else:
        op.add_column("tasks", sa.Column("cancel_reason", sa.Text(), nullable=True))
        op.add_column("tasks", sa.Column("cancelled_by_id", sa.Uuid(), nullable=True))
        op.create_foreign_key(
            "fk_tasks_cancelled_by_id_users", "tasks", "users", ["cancelled_by_id"], ["id"]
        )
    op.create_index("ix_tasks_squadron_status_due", "tasks", ["squadron_id", "status", "due"])


def downgrade():
    op.drop_index("ix_tasks_squadron_status_due", table_name="tasks")
    # SQLite can drop these columns only by rebuilding tasks, and dropping the old table deletes
    # its rows first: that cascades to task_assignees and breaks inspections.task_id for good.
    # There the two nullable columns stay (unused before 0008; the upgrade takes them back).
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_tasks_cancelled_by_id_users", "tasks", type_="foreignkey")
        op.drop_column("tasks", "cancelled_by_id")
        op.drop_column("tasks", "cancel_reason")

    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.drop_index("ix_inspections_squadron_started")
        batch_op.drop_index("ix_inspections_squadron_rectification")

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_cases_inspection_id"), type_="unique")
