"""Complaints: received from the 12345 hotline, checked by officers, substantiated or not."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fieldapp.db import UTCDateTime, db, new_uuid, utcnow


class Complaint(db.Model):
    """One complaint (12345 工单) about a target, or about a place with no registered target.

    Open while ``substantiated`` is None; the squadron's leader decides it after an officer has
    checked, and a substantiated complaint counts in the target's risk.
    """

    __tablename__ = "complaints"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    target_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("targets.id"), index=True)
    squadron_id: Mapped[int] = mapped_column(sa.ForeignKey("squadrons.id"), index=True)
    source: Mapped[str] = mapped_column(sa.String(20), default="12345")
    #: the hotline's ticket number (工单号): the same ticket forwarded twice is one complaint
    reference: Mapped[str | None] = mapped_column(sa.String(40))
    category: Mapped[str] = mapped_column(sa.String(40))
    text: Mapped[str] = mapped_column(sa.Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: None until checked; True when an inspection confirmed it.
    substantiated: Mapped[bool | None]
    #: when the leader's decision closed it; for a substantiated complaint, the moment it was
    #: found true, from which it counts in risk (a correction that keeps it true keeps this)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: the inspection that checked it, when one did
    inspection_id: Mapped[uuid.UUID | None] = mapped_column(
        # complaints -> inspections -> tasks -> complaints: the cycle is closed after creation.
        # Indexed: deleting an inspection looks here for the complaint it settled.
        sa.ForeignKey("inspections.id", use_alter=True),
        index=True,
    )
    decision_note: Mapped[str | None] = mapped_column(sa.Text)
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))

    __table_args__ = (
        sa.UniqueConstraint("source", "reference", name="uq_complaints_source_reference"),
        sa.Index("ix_complaints_squadron_received", "squadron_id", "received_at"),
    )
