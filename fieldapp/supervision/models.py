"""Supervision (督察): case-file reviews (案卷评查) and supervision orders (督办单)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fieldapp.db import JSONType, UTCDateTime, db, enum_column, new_uuid, utcnow


class Verdict(enum.StrEnum):
    """A supervisor's judgement of an inspection's case file."""

    compliant = "compliant"  # 合格
    deficient = "deficient"  # 存在问题: at least one finding says what


class CaseReview(db.Model):
    """案卷评查: a supervisor's review of one inspection's case file. Never edited; a second look
    is a second review."""

    __tablename__ = "case_reviews"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    inspection_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("inspections.id"), index=True)
    #: The inspection's squadron (whose leader reads the review).
    squadron_id: Mapped[int] = mapped_column(sa.ForeignKey("squadrons.id"))
    reviewer_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    verdict: Mapped[Verdict] = mapped_column(enum_column(Verdict))
    #: [{"code": str | None, "item_code": str | None, "text": str}]
    findings: Mapped[list] = mapped_column(JSONType, default=list)
    comment: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.Index("ix_case_reviews_squadron_created", "squadron_id", "created_at"),)


class OrderStatus(enum.StrEnum):
    """open → answered (the squadron's leader) → closed (the supervisor); answered or closed →
    open again when the supervisor reopens it."""

    open = "open"
    answered = "answered"
    closed = "closed"


class SupervisionOrder(db.Model):
    """督办单: a supervisor's order to a squadron about an inspection, a target or a case, with
    a deadline for the squadron's answer."""

    __tablename__ = "supervision_orders"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    squadron_id: Mapped[int] = mapped_column(sa.ForeignKey("squadrons.id"))
    issued_by_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    #: Indexed: deleting an inspection looks here for orders about it.
    inspection_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("inspections.id"), index=True
    )
    #: Indexed: a target's move looks here for the open orders about it or its cases.
    target_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("targets.id"), index=True)
    case_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    text: Mapped[str] = mapped_column(sa.Text)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[OrderStatus] = mapped_column(enum_column(OrderStatus), default=OrderStatus.open)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    response: Mapped[str | None] = mapped_column(sa.Text)
    answered_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Every step: [{"at", "by", "action": issue|answer|close|reopen|move, "text",
    #: "squadron_id", "deadline"?}]; ``squadron_id``: the squadron the order was with after
    #: the step (missing in steps written before it was kept: then the order's own).
    history: Mapped[list] = mapped_column(JSONType, default=list)

    __table_args__ = (
        sa.Index("ix_supervision_orders_squadron_status", "squadron_id", "status", "deadline"),
        sa.Index("ix_supervision_orders_status_deadline", "status", "deadline"),
        sa.CheckConstraint(
            "inspection_id IS NOT NULL OR target_id IS NOT NULL OR case_id IS NOT NULL",
            name="has_subject",
        ),
    )

    @property
    def overdue(self) -> bool:
        """Open (unanswered) and past its deadline, now."""
        return self.status is OrderStatus.open and self.deadline < utcnow()
