"""Risk: the settings table, each target's current assessment, and every level change."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fieldapp.db import BigIntPK, JSONType, Syncable, UTCDateTime, db, enum_column, utcnow
from fieldapp.risk.scoring import RiskLevel


class RiskSetting(db.Model):
    """One group of the risk model's numbers (weights, thresholds, floors, frequencies, rates).

    The whole model reads its numbers from this table; ``fieldapp/risk/defaults.py`` only seeds
    it. Admins read and change it through the API; each change is audited.
    """

    __tablename__ = "risk_settings"

    key: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    value: Mapped[dict] = mapped_column(JSONType)
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))


class TargetRisk(Syncable, db.Model):
    """A target's current score and level with the factors and floors behind them.

    Pulled by devices as the ``risk`` entity (its id is the target's), so it carries the
    target's squadron for scoping.
    """

    __tablename__ = "target_risks"

    target_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("targets.id"), primary_key=True)
    squadron_id: Mapped[int] = mapped_column(sa.ForeignKey("squadrons.id"))
    kind: Mapped[str] = mapped_column(sa.String(8))
    score: Mapped[int]
    level: Mapped[RiskLevel] = mapped_column(enum_column(RiskLevel))
    level_since: Mapped[datetime] = mapped_column(UTCDateTime)
    factors: Mapped[list] = mapped_column(JSONType, default=list)
    floors: Mapped[list] = mapped_column(JSONType, default=list)
    reason: Mapped[str] = mapped_column(sa.String(300), default="")
    next_due: Mapped[date | None]
    assessed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: fingerprint of the assessment: a recompute rewrites only targets whose assessment changed
    digest: Mapped[str] = mapped_column(sa.String(40), default="")

    __table_args__ = (
        sa.Index("ix_target_risks_squadron_seq", "squadron_id", "change_seq"),
        sa.Index("ix_target_risks_squadron_level", "squadron_id", "level"),
        sa.Index("ix_target_risks_next_due", "squadron_id", "next_due"),
        sa.CheckConstraint("score BETWEEN 0 AND 100", name="score_range"),
    )

    @property
    def id(self) -> uuid.UUID:
        """The target's id: devices address a risk record by its target."""
        return self.target_id


class RiskLevelChange(db.Model):
    """A level change with the score and factors that caused it (append-only)."""

    __tablename__ = "risk_level_changes"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    target_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("targets.id"))
    squadron_id: Mapped[int] = mapped_column(sa.ForeignKey("squadrons.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Named apiece: two CHECK constraints of one table may not share the enum's name.
    from_level: Mapped[RiskLevel | None] = mapped_column(enum_column(RiskLevel, name="from_level"))
    to_level: Mapped[RiskLevel] = mapped_column(enum_column(RiskLevel, name="to_level"))
    score: Mapped[int]
    reason: Mapped[str] = mapped_column(sa.String(300))
    factors: Mapped[list] = mapped_column(JSONType, default=list)
    floors: Mapped[list] = mapped_column(JSONType, default=list)

    __table_args__ = (sa.Index("ix_risk_level_changes_target_at", "target_id", "at"),)
