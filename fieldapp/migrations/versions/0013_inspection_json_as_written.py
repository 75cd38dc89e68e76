"""inspections keep their JSON as the text written (json, not jsonb, on PostgreSQL), so pull
pages serve it as compact from PostgreSQL as from SQLite

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-21 23:00:00.000000

jsonb prints its own spacing (``{"a": 1, "b": [1, 2]}``) and reorders keys; pull pages place
the stored text into the page as it is, so an inspection pulled from PostgreSQL was about 70
bytes longer than the same one pulled from SQLite. Rows already stored keep jsonb's spacing
(until migration 0014 writes them again); their values do not change. SQLite stores JSON as
text already.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

#: The inspection columns that hold JSON, with their server defaults.
COLUMNS = {
    "location_original": None,
    "answers": None,
    "photo_ids": None,
    "flags": None,
    "field_clocks": "'{}'",
    "officer_ids": "'[]'",
}


def _retype(kind: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # One ALTER TABLE rewrites the table once. Defaults are dropped and set again around the
    # change of type: PostgreSQL does not convert a jsonb default to json on its own.
    defaults = [name for name, default in COLUMNS.items() if default is not None]
    op.execute(
        "ALTER TABLE inspections "
        + ", ".join(f"ALTER COLUMN {name} DROP DEFAULT" for name in defaults)
    )
    op.execute(
        "ALTER TABLE inspections "
        + ", ".join(f"ALTER COLUMN {name} TYPE {kind} USING {name}::{kind}" for name in COLUMNS)
    )
    op.execute(
        "ALTER TABLE inspections "
        + ", ".join(
            f"ALTER COLUMN {name} SET DEFAULT {default}::{kind}"
            for name, default in COLUMNS.items()
            if default is not None
        )
    )


def upgrade():
    _retype("json")


def downgrade():
    _retype("jsonb")
