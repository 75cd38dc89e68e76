"""inspections remember when they were first submitted, so a resubmission after the leader
returned one does not make its submission late

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 09:30:00.000000

``submitted_at`` stays the latest submission (the review queue waits from it). Rows already
stored take it as their first submission too: for one resubmitted before this migration, the
first time is not recorded anywhere cheap to read, so it is judged as it was before.
"""

import sqlalchemy as sa
from alembic import op

import fieldapp.db

# revision identifiers, used by Alembic.
revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("inspections") as batch:
        batch.add_column(
            sa.Column("first_submitted_at", fieldapp.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute("UPDATE inspections SET first_submitted_at = submitted_at")


def downgrade():
    with op.batch_alter_table("inspections") as batch:
        batch.drop_column("first_submitted_at")
