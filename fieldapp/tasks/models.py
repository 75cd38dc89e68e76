"""Tasks dispatched by leaders to officers."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldapp.auth.models import User
from fieldapp.db import Syncable, UTCDateTime, db, enum_column, new_uuid, utcnow


class TaskOrigin(enum.StrEnum):
    complaint = "complaint"
    schedule = "schedule"  # due by risk level
    draw = "draw"  # 双随机
    manual = "manual"


class TaskStatus(enum.StrEnum):
    """open → done (an inspection carrying the task's id is approved) or → cancelled (by the
    leader, with a reason). Done and cancelled are final."""

    open = "open"
    done = "done"
    cancelled = "cancelled"


task_assignees = sa.Table(
    "task_assignees",
    db.metadata,
    sa.Column("task_id", sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id"), primary_key=True, index=True),
)


class Task(Syncable, db.Model):
    __tablename__ = "tasks"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    target_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("targets.id"), index=True)
    squadron_id: Mapped[int] = mapped_column(sa.ForeignKey("squadrons.id"), index=True)
    origin: Mapped[TaskOrigin] = mapped_column(enum_column(TaskOrigin))
    status: Mapped[TaskStatus] = mapped_column(enum_column(TaskStatus), default=TaskStatus.open)
    due: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(sa.Text, default="")
    complaint_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("complaints.id"))
    #: the 双随机 draw that made this task; the inspection carries it as ``draw_id``
    draw_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("draws.id"))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_inspection_id: Mapped[uuid.UUID | None] = mapped_column(
        # Indexed: deleting an inspection looks here for what it closed (and so does the
        # database's own foreign-key check).
        sa.ForeignKey("inspections.id", use_alter=True),
        index=True,
    )
    #: Why the leader cancelled it (required to cancel), and who did.
    cancel_reason: Mapped[str | None] = mapped_column(sa.Text)
    cancelled_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))

    assignees: Mapped[list[User]] = relationship(secondary=task_assignees)

    __table_args__ = (
        sa.Index("ix_tasks_squadron_seq", "squadron_id", "change_seq"),
        sa.Index("ix_tasks_squadron_status_due", "squadron_id", "status", "due"),
    )

    @property
    def assignee_ids(self) -> list[uuid.UUID]:
        return [user.id for user in self.assignees]
