"""A draw (双随机): the frozen rosters it drew from, its seed, and what it drew."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fieldapp.db import JSONType, UTCDateTime, db, enum_column, new_uuid, utcnow
from fieldapp.targets.models import TargetKind
from fieldapp.tasks.models import Task


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
    """The draws of a squadron: its own, and the district draws that drew from it, known by
    the tasks they gave it (indexed by squadron)."""
    gave_it_tasks = sa.select(Task.draw_id).where(
        Task.squadron_id == squadron_id, Task.draw_id.is_not(None)
    )
    return sa.or_(
        Draw.squadron_id == squadron_id,
        sa.and_(Draw.squadron_id.is_(None), Draw.id.in_(gave_it_tasks)),
    )
