"""inspections stored before 0013 have their JSON written again compact, as the server writes
it, so every pulled inspection is as short from PostgreSQL as from SQLite

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 02:00:00.000000

Migration 0013 turned the columns from jsonb into json keeping the text jsonb printed, with its
spacing (``{"S01": {"note": ""}}``); pull pages place that text as it is. Only the spelling
changes here: every value reads back the same, and no change is announced to devices (their
copies already hold these values). Rows the server wrote itself are compact already and are
left alone. SQLite always stored the text as written.
"""

import logging

import sqlalchemy as sa
from alembic import op

from fieldapp import jsontext

# revision identifiers, used by Alembic.
revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COLUMNS = ("location_original", "answers", "photo_ids", "flags", "field_clocks", "officer_ids")

#: Inspections read and rewritten per round trip.
CHUNK = 2_000
#: A progress line for every so many inspections read (a million take a minute or two).
PROGRESS_EVERY = 50_000

log = logging.getLogger("alembic.runtime.migration")


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # jsonb prints ": " after every key and ", " between items; the server writes neither
    # outside strings. A row whose strings hold them is read too, and left as it is.
    spaced = " OR ".join(
        f"strpos({name}::text, '\": ') > 0 OR strpos({name}::text, ', ') > 0" for name in COLUMNS
    )
    select = sa.text(
        f"SELECT id, {', '.join(f'{name}::text' for name in COLUMNS)} FROM inspections"
        f" WHERE id > :after AND ({spaced}) ORDER BY id LIMIT {CHUNK}"
    )
    update = sa.text(
        "UPDATE inspections SET "
        + ", ".join(f"{name} = CAST(:{name} AS json)" for name in COLUMNS)
        + " WHERE id = :id"
    )
    after, read, rewritten = "00000000-0000-0000-0000-000000000000", 0, 0
    while rows := bind.execute(select, {"after": after}).all():
        after = rows[-1][0]
        changed = []
        for inspection_id, *texts in rows:
            compact = [
                None if text is None else jsontext.dumps(jsontext.loads(text)) for text in texts
            ]
            if compact != texts:
                changed.append({"id": inspection_id, **dict(zip(COLUMNS, compact, strict=True))})
        if changed:
            bind.execute(update, changed)
        previously_read, read, rewritten = read, read + len(rows), rewritten + len(changed)
        if read // PROGRESS_EVERY > previously_read // PROGRESS_EVERY:
            log.info("compact JSON: %d inspections read, %d rewritten", read, rewritten)
    log.info("compact JSON: %d inspections rewritten", rewritten)


def downgrade():
    # The values are the same either way; 0013's own downgrade turns them back into jsonb.
    pass
