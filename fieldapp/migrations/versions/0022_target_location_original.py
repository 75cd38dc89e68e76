"""targets keep the location a device sent in GCJ-02 or BD-09 beside the WGS-84 point

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 14:00:00.000000

A shop reported (or its point corrected) from a device's map arrives in GCJ-02 or BD-09; the
server stores WGS-84 and, as for inspections, keeps what the device sent. Targets stored before
this migration have nothing kept (the original was not stored anywhere), so the column starts
empty.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("targets") as batch:
        batch.add_column(
            sa.Column(
                "location_original",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade():
    with op.batch_alter_table("targets") as batch:
        batch.drop_column("location_original")
