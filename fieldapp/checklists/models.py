"""Checklists and their items. A checklist keeps every published version: an inspection
names the version it was filled against, and that version's items never change."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldapp.db import BigIntPK, JSONType, Syncable, UTCDateTime, db, enum_column, utcnow
from fieldapp.targets.models import TargetKind


class Severity(enum.StrEnum):
    minor = "minor"  # 轻微
    moderate = "moderate"  # 一般
    severe = "severe"  # 严重


class Checklist(Syncable, db.Model):
    """A form for one kind of target. ``version`` is the row's (it moves with every change:
    a version published, the checklist retired or reinstated); the published versions are
    numbered apart, in :class:`ChecklistVersion`."""

    __tablename__ = "checklists"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[TargetKind] = mapped_column(enum_column(TargetKind))
    title: Mapped[str] = mapped_column(sa.String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list[ChecklistVersion]] = relationship(
        back_populates="checklist", order_by="ChecklistVersion.version"
    )


class ChecklistVersion(db.Model):
    """One published, immutable version of a checklist."""

    __tablename__ = "checklist_versions"

    checklist_id: Mapped[int] = mapped_column(sa.ForeignKey("checklists.id"), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))

    checklist: Mapped[Checklist] = relationship(back_populates="versions")
    items: Mapped[list[ChecklistItem]] = relationship(
        order_by="ChecklistItem.position", cascade="all, delete-orphan"
    )


class ChecklistItem(db.Model):
    __tablename__ = "checklist_items"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    checklist_id: Mapped[int]
    checklist_version: Mapped[int]
    position: Mapped[int]
    code: Mapped[str] = mapped_column(sa.String(16))
    text: Mapped[str] = mapped_column(sa.String(500))
    severity: Mapped[Severity] = mapped_column(enum_column(Severity))
    #: Site phases the item applies in; empty means every phase (and every shop).
    phases: Mapped[list[str]] = mapped_column(JSONType, default=list)
    legal_basis: Mapped[str] = mapped_column(sa.String(300), default="")

    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["checklist_id", "checklist_version"],
            ["checklist_versions.checklist_id", "checklist_versions.version"],
            name="fk_checklist_items_version",
        ),
        sa.UniqueConstraint(
            "checklist_id", "checklist_version", "code", name="uq_checklist_items_code"
        ),
    )
