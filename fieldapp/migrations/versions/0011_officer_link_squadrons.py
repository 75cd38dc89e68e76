"""officer links carry their inspection's squadron: an officer's inspections in other squadrons
than their own come straight off one index, so pulling costs the same however many inspections
they did in their own

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-21 14:55:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("inspection_officers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("squadron_id", sa.Integer(), nullable=True))
    # An inspection's squadron never changes, so the copy is set once, here and on insert.
    op.execute(
        "UPDATE inspection_officers SET squadron_id = (SELECT inspections.squadron_id"
        " FROM inspections WHERE inspections.id = inspection_officers.inspection_id)"
    )
    with op.batch_alter_table("inspection_officers", schema=None) as batch_op:
        batch_op.alter_column("squadron_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_inspection_officers_squadron_id_squadrons"),
            "squadrons",
            ["squadron_id"],
            ["id"],
        )
        batch_op.drop_index("ix_inspection_officers_user_id")
        batch_op.create_index(
            "ix_inspection_officers_user_squadron", ["user_id", "squadron_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("inspection_officers", schema=None) as batch_op:
        batch_op.drop_index("ix_inspection_officers_user_squadron")
        batch_op.create_index("ix_inspection_officers_user_id", ["user_id"], unique=False)
        batch_op.drop_constraint(
            batch_op.f("fk_inspection_officers_squadron_id_squadrons"), type_="foreignkey"
        )
        batch_op.drop_column("squadron_id")
