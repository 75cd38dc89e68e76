"""Track points. Appended in batches through sync; a point already stored is skipped."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fieldapp.db import BigIntPK, JSONType, UTCDateTime, db


class TrackPoint(db.Model):
    __tablename__ = "track_points"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    officer_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    t: Mapped[datetime] = mapped_column(UTCDateTime)
    lon: Mapped[float]
    lat: Mapped[float]
    accuracy_m: Mapped[float | None]
    #: What the device sent when it was not WGS-84: {"lon", "lat", "crs"}.
    original: Mapped[dict | None] = mapped_column(JSONType)
    device_id: Mapped[str | None] = mapped_column(sa.String(64))
    batch_id: Mapped[uuid.UUID | None]

    # Per device: two devices of one officer may both record a fix at one instant; a repeated
    # batch from one device still adds nothing.
    __table_args__ = (
        sa.UniqueConstraint(
            "officer_id", "t", "device_id", name="uq_track_points_officer_t_device"
        ),
    )
