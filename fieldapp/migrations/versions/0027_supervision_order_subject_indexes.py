"""supervision order subject indexes: a target's move (by an admin, an import or a redraw
moving many) looks up the open orders about it or its cases; without an index each moved
target read every order

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-05 18:20:00.000000
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("supervision_orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_supervision_orders_target_id"), ["target_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_supervision_orders_case_id"), ["case_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("supervision_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_supervision_orders_case_id"))
        batch_op.drop_index(batch_op.f("ix_supervision_orders_target_id"))
