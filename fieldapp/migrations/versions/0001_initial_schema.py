"""initial schema: organisation, users and devices, targets, checklists, inspections,
complaints, cases, tasks, the audit log and the change sequence counter

Revision ID: 0001
Revises:
Create Date: 2026-11-21 05:38:15.160308

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import fieldapp.db

# revision identifiers, used by Alembic.
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "checklists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("shop", "site", name="targetkind", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checklists")),
    )
    with op.batch_alter_table("checklists", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checklists_change_seq"), ["change_seq"], unique=False)

    op.create_table(
        "districts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("created_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_districts")),
        sa.UniqueConstraint("code", name=op.f("uq_districts_code")),
    )
    op.create_table(
        "login_failures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.create_index("ix_login_failures_username_at", ["username", "at"], unique=False)

    op.create_table(
        "sync_change_counter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_change_counter")),
    )
    op.create_table(
        "squadrons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column(
            "jurisdiction",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("min_lon", sa.Double(), nullable=True),
        sa.Column("min_lat", sa.Double(), nullable=True),
        sa.Column("max_lon", sa.Double(), nullable=True),
        sa.Column("max_lat", sa.Double(), nullable=True),
        sa.Column("created_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_squadrons_district_id_districts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_squadrons")),
        sa.UniqueConstraint("district_id", "name", name="uq_squadrons_district_name"),
    )
    with op.batch_alter_table("squadrons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_squadrons_change_seq"), ["change_seq"], unique=False)
        batch_op.create_index(batch_op.f("ix_squadrons_district_id"), ["district_id"], unique=False)

    op.create_table(
        "targets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("shop", "site", name="targetkind", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("squadron_id", sa.Integer(), nullable=False),
        sa.Column("lon", sa.Double(), nullable=False),
        sa.Column("lat", sa.Double(), nullable=False),
        sa.Column(
            "credit_class",
            sa.Enum(
                "A", "B", "C", "D", name="creditclass", native_enum=False, create_constraint=True
            ),
            nullable=False,
        ),
        sa.Column("sensitive_surroundings", sa.Boolean(), nullable=False),
        sa.Column("business_type", sa.String(length=40), nullable=True),
        sa.Column("uscc", sa.String(length=18), nullable=True),
        sa.Column("permit_no", sa.String(length=60), nullable=True),
        sa.Column(
            "scale",
            sa.Enum(
                "large",
                "medium",
                "small",
                "micro",
                name="sitescale",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column(
            "phase",
            sa.Enum(
                "earthwork",
                "foundation",
                "structure",
                "finishing",
                name="sitephase",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column(
            "boundary",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind <> 'shop' OR business_type IS NOT NULL",
            name=op.f("ck_targets_shop_has_business_type"),
        ),
        sa.CheckConstraint(
            "kind <> 'site' OR (scale IS NOT NULL AND phase IS NOT NULL)",
            name=op.f("ck_targets_site_has_scale"),
        ),
        sa.CheckConstraint(
            "lon BETWEEN -180 AND 180 AND lat BETWEEN -90 AND 90", name=op.f("ck_targets_lon_lat")
        ),
        sa.ForeignKeyConstraint(
            ["squadron_id"], ["squadrons.id"], name=op.f("fk_targets_squadron_id_squadrons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_targets")),
        sa.UniqueConstraint("code", name=op.f("uq_targets_code")),
    )
    with op.batch_alter_table("targets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_targets_change_seq"), ["change_seq"], unique=False)
        batch_op.create_index("ix_targets_lon_lat", ["lon", "lat"], unique=False)
        batch_op.create_index("ix_targets_name", ["name"], unique=False)
        batch_op.create_index("ix_targets_squadron_kind", ["squadron_id", "kind"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "officer",
                "leader",
                "supervisor",
                "admin",
                name="role",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("squadron_id", sa.Integer(), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(role NOT IN ('officer', 'leader')) OR squadron_id IS NOT NULL",
            name=op.f("ck_users_squadron_for_squadron_roles"),
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_users_district_id_districts")
        ),
        sa.ForeignKeyConstraint(
            ["squadron_id"], ["squadrons.id"], name=op.f("fk_users_squadron_id_squadrons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_change_seq"), ["change_seq"], unique=False)
        batch_op.create_index(batch_op.f("ix_users_district_id"), ["district_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_users_squadron_id"), ["squadron_id"], unique=False)

    op.create_table(
        "audit_entries",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=True),
        sa.Column(
            "before",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "after",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("prev_hash", sa.String(length=64), nullable=True),
        sa.Column("hash", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_audit_entries_actor_id_users")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_entries")),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_entries_actor_id"), ["actor_id"], unique=False)
        batch_op.create_index(
            "ix_audit_entries_entity_record", ["entity", "record_id"], unique=False
        )

    op.create_table(
        "checklist_versions",
        sa.Column("checklist_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("published_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_by_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["checklist_id"],
            ["checklists.id"],
            name=op.f("fk_checklist_versions_checklist_id_checklists"),
        ),
        sa.ForeignKeyConstraint(
            ["published_by_id"],
            ["users.id"],
            name=op.f("fk_checklist_versions_published_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("checklist_id", "version", name=op.f("pk_checklist_versions")),
    )
    op.create_table(
        "complaints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=True),
        sa.Column("squadron_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("received_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("substantiated", sa.Boolean(), nullable=True),
        sa.Column("closed_at", fieldapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["squadron_id"], ["squadrons.id"], name=op.f("fk_complaints_squadron_id_squadrons")
        ),
        sa.ForeignKeyConstraint(
            ["target_id"], ["targets.id"], name=op.f("fk_complaints_target_id_targets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaints")),
    )
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_complaints_squadron_id"), ["squadron_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_complaints_target_id"), ["target_id"], unique=False)

    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=True),
        sa.Column("first_seen_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_user_id", sa.Uuid(), nullable=True),
        sa.Column("revoked_at", fieldapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["last_user_id"], ["users.id"], name=op.f("fk_devices_last_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by_id"], ["users.id"], name=op.f("fk_devices_revoked_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
    )
    op.create_table(
        "checklist_items",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("checklist_id", sa.Integer(), nullable=False),
        sa.Column("checklist_version", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column(
            "severity",
            sa.Enum(
                "minor",
                "moderate",
                "severe",
                name="severity",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "phases",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("legal_basis", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["checklist_id", "checklist_version"],
            ["checklist_versions.checklist_id", "checklist_versions.version"],
            name="fk_checklist_items_version",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checklist_items")),
        sa.UniqueConstraint(
            "checklist_id", "checklist_version", "code", name="uq_checklist_items_code"
        ),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("squadron_id", sa.Integer(), nullable=False),
        sa.Column(
            "origin",
            sa.Enum(
                "complaint",
                "schedule",
                "draw",
                "manual",
                name="taskorigin",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "done",
                "cancelled",
                name="taskstatus",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("due", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("complaint_id", sa.Uuid(), nullable=True),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", fieldapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_by_inspection_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["complaint_id"], ["complaints.id"], name=op.f("fk_tasks_complaint_id_complaints")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_tasks_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["squadron_id"], ["squadrons.id"], name=op.f("fk_tasks_squadron_id_squadrons")
        ),
        sa.ForeignKeyConstraint(
            ["target_id"], ["targets.id"], name=op.f("fk_tasks_target_id_targets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tasks_change_seq"), ["change_seq"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasks_squadron_id"), ["squadron_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasks_target_id"), ["target_id"], unique=False)

    op.create_table(
        "tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", fieldapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_tokens_device_id_devices")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_tokens_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_tokens_token_hash")),
    )
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tokens_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "inspections",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("squadron_id", sa.Integer(), nullable=False),
        sa.Column("checklist_id", sa.Integer(), nullable=False),
        sa.Column("checklist_version", sa.Integer(), nullable=False),
        sa.Column(
            "origin",
            sa.Enum(
                "scheduled",
                "random",
                "complaint",
                "patrol",
                "task",
                name="origin",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("draw_id", sa.Uuid(), nullable=True),
        sa.Column("started_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", fieldapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lon", sa.Double(), nullable=False),
        sa.Column("lat", sa.Double(), nullable=False),
        sa.Column("accuracy_m", sa.Double(), nullable=True),
        sa.Column(
            "location_crs",
            sa.Enum(
                "wgs84",
                "gcj02",
                "bd09",
                name="coordinatesystem",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "location_original",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "answers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(
                "compliant",
                "corrected_on_site",
                "rectification_ordered",
                "case_opened",
                "penalty_waived",
                name="outcome",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column("rectification_deadline", sa.Date(), nullable=True),
        sa.Column("legal_basis", sa.String(length=300), nullable=True),
        sa.Column("follow_up_of", sa.Uuid(), nullable=True),
        sa.Column(
            "photo_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "submitted",
                name="inspectionstatus",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "review_status",
            sa.Enum(
                "pending",
                "approved",
                "returned",
                name="reviewstatus",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("review_comment", sa.Text(), nullable=True),
        sa.Column("reviewed_by_id", sa.Uuid(), nullable=True),
        sa.Column("reviewed_at", fieldapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column(
            "flags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("received_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", fieldapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "outcome <> 'rectification_ordered' OR rectification_deadline IS NOT NULL",
            name=op.f("ck_inspections_rectification_has_deadline"),
        ),
        sa.ForeignKeyConstraint(
            ["checklist_id"], ["checklists.id"], name=op.f("fk_inspections_checklist_id_checklists")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_inspections_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["follow_up_of"],
            ["inspections.id"],
            name=op.f("fk_inspections_follow_up_of_inspections"),
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by_id"], ["users.id"], name=op.f("fk_inspections_reviewed_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["squadron_id"], ["squadrons.id"], name=op.f("fk_inspections_squadron_id_squadrons")
        ),
        sa.ForeignKeyConstraint(
            ["target_id"], ["targets.id"], name=op.f("fk_inspections_target_id_targets")
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_inspections_task_id_tasks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspections")),
    )
    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inspections_change_seq"), ["change_seq"], unique=False)
        batch_op.create_index(
            "ix_inspections_squadron_review",
            ["squadron_id", "review_status", "started_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_inspections_target_started", ["target_id", "started_at"], unique=False
        )

    op.create_table(
        "task_assignees",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_task_assignees_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_task_assignees_user_id_users")
        ),
        sa.PrimaryKeyConstraint("task_id", "user_id", name=op.f("pk_task_assignees")),
    )
    with op.batch_alter_table("task_assignees", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_assignees_user_id"), ["user_id"], unique=False)

    op.create_table(
        "cases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=60), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("squadron_id", sa.Integer(), nullable=False),
        sa.Column("inspection_id", sa.Uuid(), nullable=True),
        sa.Column("item_code", sa.String(length=16), nullable=True),
        sa.Column("opened_at", fieldapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", fieldapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("fine_yuan", sa.Integer(), nullable=True),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["inspection_id"], ["inspections.id"], name=op.f("fk_cases_inspection_id_inspections")
        ),
        sa.ForeignKeyConstraint(
            ["squadron_id"], ["squadrons.id"], name=op.f("fk_cases_squadron_id_squadrons")
        ),
        sa.ForeignKeyConstraint(
            ["target_id"], ["targets.id"], name=op.f("fk_cases_target_id_targets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("number", name=op.f("uq_cases_number")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cases_squadron_id"), ["squadron_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_target_id"), ["target_id"], unique=False)

    op.create_table(
        "inspection_officers",
        sa.Column("inspection_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["inspection_id"],
            ["inspections.id"],
            name=op.f("fk_inspection_officers_inspection_id_inspections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_inspection_officers_user_id_users")
        ),
        sa.PrimaryKeyConstraint("inspection_id", "user_id", name=op.f("pk_inspection_officers")),
    )
    with op.batch_alter_table("inspection_officers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inspection_officers_user_id"), ["user_id"], unique=False
        )

    # tasks and inspections point at each other: the second link is added once both exist.
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_tasks_closed_by_inspection_id_inspections"),
            "inspections",
            ["closed_by_inspection_id"],
            ["id"],
        )

    # The change sequence starts at 0; every syncable write takes the next numbers from here.
    counter = sa.table(
        "sync_change_counter", sa.column("id", sa.Integer), sa.column("value", sa.BigInteger)
    )
    op.bulk_insert(counter, [{"id": 1, "value": 0}])


def downgrade():
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_tasks_closed_by_inspection_id_inspections"), type_="foreignkey"
        )
    with op.batch_alter_table("inspection_officers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inspection_officers_user_id"))

    op.drop_table("inspection_officers")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_target_id"))
        batch_op.drop_index(batch_op.f("ix_cases_squadron_id"))

    op.drop_table("cases")
    with op.batch_alter_table("task_assignees", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_assignees_user_id"))

    op.drop_table("task_assignees")
    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.drop_index("ix_inspections_target_started")
        batch_op.drop_index("ix_inspections_squadron_review")
        batch_op.drop_index(batch_op.f("ix_inspections_change_seq"))

    op.drop_table("inspections")
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tokens_user_id"))
        batch_op.drop_index(batch_op.f("ix_tokens_device_id"))

    op.drop_table("tokens")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_target_id"))
        batch_op.drop_index(batch_op.f("ix_tasks_squadron_id"))
        batch_op.drop_index(batch_op.f("ix_tasks_change_seq"))

    op.drop_table("tasks")
    op.drop_table("checklist_items")
    op.drop_table("devices")
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_complaints_target_id"))
        batch_op.drop_index(batch_op.f("ix_complaints_squadron_id"))

    op.drop_table("complaints")
    op.drop_table("checklist_versions")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_entity_record")
        batch_op.drop_index(batch_op.f("ix_audit_entries_actor_id"))

    op.drop_table("audit_entries")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_squadron_id"))
        batch_op.drop_index(batch_op.f("ix_users_district_id"))
        batch_op.drop_index(batch_op.f("ix_users_change_seq"))

    op.drop_table("users")
    with op.batch_alter_table("targets", schema=None) as batch_op:
        batch_op.drop_index("ix_targets_squadron_kind")
        batch_op.drop_index("ix_targets_name")
        batch_op.drop_index("ix_targets_lon_lat")
        batch_op.drop_index(batch_op.f("ix_targets_change_seq"))

    op.drop_table("targets")
    with op.batch_alter_table("squadrons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_squadrons_district_id"))
        batch_op.drop_index(batch_op.f("ix_squadrons_change_seq"))

    op.drop_table("squadrons")
    op.drop_table("sync_change_counter")
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_login_failures_username_at")

    op.drop_table("login_failures")
    op.drop_table("districts")
    with op.batch_alter_table("checklists", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checklists_change_seq"))

    op.drop_table("checklists")
