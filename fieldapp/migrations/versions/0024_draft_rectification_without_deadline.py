"""a draft may order rectification before its deadline is chosen: the deadline is required to
submit, not to save a draft (the table refused such a draft, and a device retried it forever)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 10:00:00.000000

Only the CHECK constraint changes; no row is touched (every stored row passes the looser rule).
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

NAME = "rectification_has_deadline"
ORDER_HAS_DEADLINE = "outcome <> 'rectification_ordered' OR rectification_deadline IS NOT NULL"


def _replace_rule(condition: str) -> None:
    # On SQLite the batch copies the table with the new rule (foreign keys are off meanwhile:
    # see env.py); PostgreSQL alters it in place.
    with op.batch_alter_table("inspections") as batch:
        batch.drop_constraint(batch.f(f"ck_inspections_{NAME}"), type_="check")
        batch.create_check_constraint(NAME, condition)


def upgrade():
    _replace_rule(f"{ORDER_HAS_DEADLINE} OR status = 'draft'")


def downgrade():
    # Drafts that order rectification without a deadline yet cannot keep the old rule: they
    # are set back to no outcome (the officer picks it again), rather than failing the
    # downgrade.
    op.execute(
        "UPDATE inspections SET outcome = NULL WHERE status = 'draft'"
        " AND outcome = 'rectification_ordered' AND rectification_deadline IS NULL"
    )
    _replace_rule(ORDER_HAS_DEADLINE)
