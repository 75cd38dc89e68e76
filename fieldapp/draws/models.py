"""A draw (双随机): the frozen rosters it drew from, its seed, and what it drew."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fieldapp.db import JSONType, UTCDateTime, db, enum_column, new_uuid, utcnow
from fieldapp.targets.models import TargetKind
from fieldapp.tasks.models import Task
from sync.hlc import MAX_SKEW_MS
from sync.models import ScopeExit

#: How long before its draw was made an inspection may say it started and still count as the
#: draw's: a device's clock may run behind the server's. The same minute sync lets one run ahead.
DEVICE_CLOCK_ALLOWANCE = timedelta(milliseconds=MAX_SKEW_MS)


class Draw(db.Model):
    """One random draw. ``roster`` holds everything the draw depended on (targets with their
    levels, each squadron's officers, each target's previous inspectors, the rates), so that
    anyone can run :func:`fieldapp.draws.operations.run_draw` on it again with ``seed`` and get
    the same ``targets``; ``roster_hash`` fingerprints it."""

    __tablename__ = "draws"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    squadron_id: Mapped[int | None] = mapped_column(sa.ForeignKey("squadrons.id"), index=True)
    district_id: Mapped[int] = mapped_column(sa.ForeignKey("districts.id"))
    kind: Mapped[TargetKind] = mapped_column(enum_column(TargetKind))
    seed: Mapped[int] = mapped_column(sa.BigInteger)
    rates: Mapped[dict] = mapped_column(JSONType)
    roster: Mapped[dict] = mapped_column(JSONType)
    roster_hash: Mapped[str] = mapped_column(sa.String(64))
    #: [{target_id, level, officer_ids}] in the order drawn
    targets: Mapped[list] = mapped_column(JSONType)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def drew_from(squadron_id: int) -> sa.ColumnElement[bool]:
    """The draws of a squadron: its own, and those that gave it a task, known by the tasks
    (indexed by squadron): a district draw that drew from it, or another squadron's draw whose
    drawn target moved to it with its open task (``task.move``). The draw_id its tasks carry
    opens. A district draw whose task moved on from it with its target stays its draw too (the
    task's scope exit says it held the task): it drew from the squadron, whose officers may
    still be on the way with the task."""
    holds_a_task = sa.select(Task.draw_id).where(
        Task.squadron_id == squadron_id, Task.draw_id.is_not(None)
    )
    held_a_task = (
        sa.select(Task.draw_id)
        .join(ScopeExit, sa.and_(ScopeExit.entity == "task", ScopeExit.record_id == Task.id))
        .where(ScopeExit.squadron_id == squadron_id, Task.draw_id.is_not(None))
    )
    return sa.or_(
        Draw.squadron_id == squadron_id,
        Draw.id.in_(holds_a_task),
        Draw.id.in_(held_a_task),
    )


def started_since_drawn(started_at) -> sa.ColumnElement[bool]:
    """``started_at`` (an inspection's, with ``Draw`` joined) is no earlier than the draw was
    made, less :data:`DEVICE_CLOCK_ALLOWANCE`: an inspection begun before is no result of it,
    whatever ``draw_id`` its device sent."""
    if db.session.get_bind().dialect.name == "sqlite":
        # SQLite keeps times as UTC text ('2026-11-21 07:08:09.123456'), which sorts in time
        # order and which strftime shifts (to the millisecond: the allowance grows by < 1 ms).
        seconds = DEVICE_CLOCK_ALLOWANCE.total_seconds()
        made = sa.func.strftime("%Y-%m-%d %H:%M:%f", Draw.created_at, f"-{seconds:g} seconds")
    else:
        made = Draw.created_at - sa.literal(DEVICE_CLOCK_ALLOWANCE, sa.Interval())
    return started_at >= made
