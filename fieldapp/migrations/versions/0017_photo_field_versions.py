"""photos note the version each metadata field was last written at, so that two devices'
edits of one photo's item, time or place follow the field rules (later clock wins, the other
value logged) instead of the last to arrive

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 03:20:00.000000

Photos already stored start with none noted: their fields count as unchanged since any base.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("photos") as batch:
        batch.add_column(
            sa.Column(
                "field_versions",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                server_default=sa.text("'{}'"),
                nullable=False,
            )
        )


def downgrade():
    with op.batch_alter_table("photos") as batch:
        batch.drop_column("field_versions")
