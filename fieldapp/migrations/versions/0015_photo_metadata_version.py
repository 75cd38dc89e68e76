"""photos remember the version their metadata was last written at, so a delete based on an
older version is a conflict only when someone edited the metadata since, not when the bytes
arrived

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 02:00:00.000000

A photo's version also moves when its bytes are stored. Rows already stored take their current
version: a delete based on an older one stays a logged conflict, as it was before.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("photos") as batch:
        batch.add_column(
            sa.Column("metadata_version", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )
    op.execute("UPDATE photos SET metadata_version = version")


def downgrade():
    with op.batch_alter_table("photos") as batch:
        batch.drop_column("metadata_version")
