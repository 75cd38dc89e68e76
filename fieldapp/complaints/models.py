"""Complaints: received from the 12345 hotline, checked by officers, substantiated or not."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fieldapp.db import UTCDateTime, db, new_uuid, utcnow


class Complaint(db.Model):
    __tablename__ = "complaints"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    target_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("targets.id"), index=True)
    squadron_id: Mapped[int] = mapped_column(sa.ForeignKey("squadrons.id"), index=True)
    source: Mapped[str] = mapped_column(sa.String(20), default="12345")
    category: Mapped[str] = mapped_column(sa.String(40))
    text: Mapped[str] = mapped_column(sa.Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: None until checked; True when an inspection confirmed it.
    substantiated: Mapped[bool | None]
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
