"""Photo metadata, as devices report it through sync."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fieldapp.db import JSONType, Syncable, UTCDateTime, db, new_uuid, utcnow


class Photo(Syncable, db.Model):
    """One photo. It belongs to an inspection (and optionally one checklist item of it)."""

    __tablename__ = "photos"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    inspection_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("inspections.id", ondelete="CASCADE"), index=True
    )
    #: Copied from the inspection: photos are scoped like the inspection they belong to.
    squadron_id: Mapped[int] = mapped_column(sa.ForeignKey("squadrons.id"), index=True)
    item_code: Mapped[str | None] = mapped_column(sa.String(16))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lon: Mapped[float | None]
    lat: Mapped[float | None]
    accuracy_m: Mapped[float | None]
    location_original: Mapped[dict | None] = mapped_column(JSONType)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    content_type: Mapped[str] = mapped_column(sa.String(40))
    uploaded: Mapped[bool] = mapped_column(default=False)
    uploaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    device_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    field_clocks: Mapped[dict] = mapped_column(JSONType, default=dict)

    __table_args__ = (sa.Index("ix_photos_squadron_seq", "squadron_id", "change_seq"),)
