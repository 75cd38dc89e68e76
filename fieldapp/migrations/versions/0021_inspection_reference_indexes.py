"""references to inspections indexed: the task an inspection closed, the complaint it settled
and supervision orders about it, so that deleting an inspection finds what holds on to it
without reading those tables whole

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 10:20:00.000000

Before an inspection is deleted, the server looks for the records that refer to it (it is not
deleted while any does); PostgreSQL's own foreign-key check on the delete reads the same
columns. Unindexed, each was a scan of the whole table.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

#: (table, column) of each reference to an inspection that had no index
REFERENCES = [
    ("tasks", "closed_by_inspection_id"),
    ("complaints", "inspection_id"),
    ("supervision_orders", "inspection_id"),
]


def upgrade():
    for table, column in REFERENCES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)


def downgrade():
    for table, column in reversed(REFERENCES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_{column}"))
