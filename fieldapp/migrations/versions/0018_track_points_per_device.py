"""track points are unique per officer, instant and device, so two devices of one officer
that both record a fix at the same instant both keep it (a repeated batch still adds nothing)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 04:30:00.000000

The new key starts with (officer_id, t), so reading an officer's track between two instants
still comes straight off its index.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("track_points") as batch:
        batch.drop_constraint("uq_track_points_officer_t", type_="unique")
        batch.create_unique_constraint(
            "uq_track_points_officer_t_device", ["officer_id", "t", "device_id"]
        )


def downgrade():
    # Keeps the first fix of each officer and instant, as the old key did.
    op.execute(
        "DELETE FROM track_points WHERE id NOT IN "
        "(SELECT MIN(id) FROM track_points GROUP BY officer_id, t)"
    )
    with op.batch_alter_table("track_points") as batch:
        batch.drop_constraint("uq_track_points_officer_t_device", type_="unique")
        batch.create_unique_constraint("uq_track_points_officer_t", ["officer_id", "t"])
