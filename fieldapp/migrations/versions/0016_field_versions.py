"""inspections and targets note the version each field was last written at by an edit, so a
merge knows a field set back to its value at a device's base was still changed meanwhile

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 02:40:00.000000

Rows already stored start with none noted: their fields count as unchanged since any base, as
every merge counted them before.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

#: Each table with the JSON type its other JSON columns have on PostgreSQL.
TABLES = {"inspections": sa.JSON(), "targets": postgresql.JSONB(astext_type=sa.Text())}


def upgrade():
    for table, pg_type in TABLES.items():
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column(
                    "field_versions",
                    sa.JSON().with_variant(pg_type, "postgresql"),
                    server_default=sa.text("'{}'"),
                    nullable=False,
                )
            )


def downgrade():
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("field_versions")
