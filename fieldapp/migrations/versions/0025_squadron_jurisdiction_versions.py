"""squadron jurisdiction versions: every drawing of a squadron's jurisdiction with the moment
it took effect, so an inspection is judged against the ground its squadron had when it was made

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05 18:00:00.000000

Each squadron's current polygon becomes its first version, in force from the squadron's
creation (what every check judged by until now).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import fieldapp.db

# revision identifiers, used by Alembic.
revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "squadron_jurisdictions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("squadron_id", sa.Integer(), nullable=False),
        sa.Column("valid_from", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "jurisdiction",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["squadron_id"],
            ["squadrons.id"],
            name=op.f("fk_squadron_jurisdictions_squadron_id_squadrons"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_squadron_jurisdictions")),
    )
    with op.batch_alter_table("squadron_jurisdictions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_squadron_jurisdictions_squadron_from", ["squadron_id", "valid_from"], unique=False
        )
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    squadrons = sa.table(
        "squadrons",
        sa.column("id", sa.Integer()),
        sa.column("created_at", fieldapp.db.UTCDateTime(timezone=True)),
        sa.column("jurisdiction", json),
    )
    versions = sa.table(
        "squadron_jurisdictions",
        sa.column("squadron_id", sa.Integer()),
        sa.column("valid_from", fieldapp.db.UTCDateTime(timezone=True)),
        sa.column("jurisdiction", json),
    )
    rows = [
        {"squadron_id": row.id, "valid_from": row.created_at, "jurisdiction": row.jurisdiction}
        # in Python: a squadron without a polygon may hold SQL NULL or JSON null
        for row in op.get_bind().execute(sa.select(squadrons))
        if row.jurisdiction
    ]
    if rows:
        op.bulk_insert(versions, rows)


def downgrade():
    with op.batch_alter_table("squadron_jurisdictions", schema=None) as batch_op:
        batch_op.drop_index("ix_squadron_jurisdictions_squadron_from")
    op.drop_table("squadron_jurisdictions")
