"""inspections keep their officers' ids in order beside the link rows, so a pull page serves
them without a query per inspection

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-21 16:45:00.000000

"""

import itertools
import operator

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: Inspections updated per statement while copying the links' order.
CHUNK = 5_000


def upgrade():
    op.add_column(
        "inspections",
        sa.Column(
            "officer_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default=sa.text("'[]'"),
            nullable=False,
        ),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "UPDATE inspections SET officer_ids = links.ids FROM ("
            " SELECT inspection_id, jsonb_agg(user_id::text ORDER BY position) AS ids"
            " FROM inspection_officers GROUP BY inspection_id) AS links"
            " WHERE links.inspection_id = inspections.id"
        )
        return
    # SQLite keeps no order in its aggregates: the links are read in order and grouped here.
    links = sa.table(
        "inspection_officers",
        sa.column("inspection_id", sa.Uuid),
        sa.column("user_id", sa.Uuid),
        sa.column("position", sa.Integer),
    )
    inspections = sa.table("inspections", sa.column("id", sa.Uuid), sa.column("officer_ids"))
    update = (
        sa.update(inspections)
        .where(inspections.c.id == sa.bindparam("inspection_id", type_=sa.Uuid))
        .values(officer_ids=sa.bindparam("ids", type_=sa.JSON))
    )
    rows = bind.execute(
        sa.select(links.c.inspection_id, links.c.user_id).order_by(
            links.c.inspection_id, links.c.position
        )
    ).all()
    grouped = itertools.groupby(rows, key=operator.itemgetter(0))
    values = [
        {"inspection_id": inspection_id, "ids": [str(user_id) for _, user_id in group]}
        for inspection_id, group in grouped
    ]
    for start in range(0, len(values), CHUNK):
        bind.execute(update, values[start : start + CHUNK])


def downgrade():
    op.drop_column("inspections", "officer_ids")
