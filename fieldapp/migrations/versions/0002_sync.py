"""sync: versions, conflicts, tombstones, processed changes, photos, tracks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 06:12:39.831966

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import fieldapp.db

# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "conflicts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("squadron_id", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(length=60), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "field",
                "amendment",
                "delete",
                name="conflictkind",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "base_value",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "server_value",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "client_value",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("kept", sa.String(length=10), nullable=False),
        sa.Column("record_version", sa.Integer(), nullable=True),
        sa.Column("change_id", sa.Uuid(), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open", "resolved", name="conflictstatus", native_enum=False, create_constraint=True
            ),
            nullable=False,
        ),
        sa.Column(
            "resolution",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("resolved_by_id", sa.Uuid(), nullable=True),
        sa.Column("resolved_at", fieldapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"], ["users.id"], name=op.f("fk_conflicts_resolved_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["squadron_id"], ["squadrons.id"], name=op.f("fk_conflicts_squadron_id_squadrons")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_conflicts_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conflicts")),
    )
    with op.batch_alter_table("conflicts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conflicts_record_id"), ["record_id"], unique=False)
        batch_op.create_index(
            "ix_conflicts_squadron_status", ["squadron_id", "status", "created_at"], unique=False
        )

    op.create_table(
        "record_versions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "changed",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("change_id", sa.Uuid(), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("hlc", sa.String(length=90), nullable=True),
        sa.Column("at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_record_versions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_versions")),
        sa.UniqueConstraint("entity", "record_id", "version", name="uq_record_versions_version"),
    )
    op.create_table(
        "sync_changes",
        sa.Column("change_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("received_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sync_changes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("change_id", name=op.f("pk_sync_changes")),
    )
    op.create_table(
        "sync_tombstones",
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("squadron_id", sa.Integer(), nullable=True),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_by_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["deleted_by_id"], ["users.id"], name=op.f("fk_sync_tombstones_deleted_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["squadron_id"], ["squadrons.id"], name=op.f("fk_sync_tombstones_squadron_id_squadrons")
        ),
        sa.PrimaryKeyConstraint("entity", "record_id", name=op.f("pk_sync_tombstones")),
    )
    with op.batch_alter_table("sync_tombstones", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sync_tombstones_change_seq"), ["change_seq"], unique=False
        )

    op.create_table(
        "track_points",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("officer_id", sa.Uuid(), nullable=False),
        sa.Column("t", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lon", sa.Double(), nullable=False),
        sa.Column("lat", sa.Double(), nullable=False),
        sa.Column("accuracy_m", sa.Double(), nullable=True),
        sa.Column(
            "original",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("batch_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["officer_id"], ["users.id"], name=op.f("fk_track_points_officer_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_track_points")),
        sa.UniqueConstraint("officer_id", "t", name="uq_track_points_officer_t"),
    )
    op.create_table(
        "photos",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("inspection_id", sa.Uuid(), nullable=False),
        sa.Column("squadron_id", sa.Integer(), nullable=False),
        sa.Column("item_code", sa.String(length=16), nullable=True),
        sa.Column("taken_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lon", sa.Double(), nullable=True),
        sa.Column("lat", sa.Double(), nullable=True),
        sa.Column("accuracy_m", sa.Double(), nullable=True),
        sa.Column(
            "location_original",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("uploaded", sa.Boolean(), nullable=False),
        sa.Column("uploaded_at", fieldapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "field_clocks",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_photos_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["inspection_id"],
            ["inspections.id"],
            name=op.f("fk_photos_inspection_id_inspections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["squadron_id"], ["squadrons.id"], name=op.f("fk_photos_squadron_id_squadrons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_photos")),
    )
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_photos_change_seq"), ["change_seq"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_photos_inspection_id"), ["inspection_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_photos_squadron_id"), ["squadron_id"], unique=False)

    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("clock_skew_at", fieldapp.db.UTCDateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "field_clocks",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'{}'"),
            )
        )

    with op.batch_alter_table("targets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "field_clocks",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'{}'"),
            )
        )


def downgrade():
    with op.batch_alter_table("targets", schema=None) as batch_op:
        batch_op.drop_column("field_clocks")

    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.drop_column("field_clocks")

    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("clock_skew_at")

    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_photos_squadron_id"))
        batch_op.drop_index(batch_op.f("ix_photos_inspection_id"))
        batch_op.drop_index(batch_op.f("ix_photos_change_seq"))

    op.drop_table("photos")
    op.drop_table("track_points")
    with op.batch_alter_table("sync_tombstones", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_tombstones_change_seq"))

    op.drop_table("sync_tombstones")
    op.drop_table("sync_changes")
    op.drop_table("record_versions")
    with op.batch_alter_table("conflicts", schema=None) as batch_op:
        batch_op.drop_index("ix_conflicts_squadron_status")
        batch_op.drop_index(batch_op.f("ix_conflicts_record_id"))

    op.drop_table("conflicts")
