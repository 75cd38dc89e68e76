"""Districts and squadrons."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldapp.db import JSONType, Syncable, UTCDateTime, db, utcnow


class District(db.Model):
    """区局: the unit that supervisors oversee; owns squadrons."""

    __tablename__ = "districts"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(12), unique=True)  # administrative code, 310113
    name: Mapped[str] = mapped_column(sa.String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    squadrons: Mapped[list[Squadron]] = relationship(back_populates="district")


class Squadron(Syncable, db.Model):
    """中队: officers, their leader and the targets inside a jurisdiction polygon (WGS-84)."""

    __tablename__ = "squadrons"

    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[int] = mapped_column(sa.ForeignKey("districts.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(80))
    #: GeoJSON Polygon or MultiPolygon geometry, validated with shapely on the way in.
    jurisdiction: Mapped[dict | None] = mapped_column(JSONType)
    # The polygon's bounds, so "which squadron contains this point" needs no full scan.
    min_lon: Mapped[float | None]
    min_lat: Mapped[float | None]
    max_lon: Mapped[float | None]
    max_lat: Mapped[float | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    district: Mapped[District] = relationship(back_populates="squadrons")

    __table_args__ = (
        sa.UniqueConstraint("district_id", "name", name="uq_squadrons_district_name"),
    )


class JurisdictionVersion(db.Model):
    """A squadron's jurisdiction as drawn from ``valid_from`` until its next version: every
    drawing is kept, so an inspection is judged against the ground its squadron had when it
    was made, not against a boundary moved since (the ``outside_jurisdiction`` check)."""

    __tablename__ = "squadron_jurisdictions"

    id: Mapped[int] = mapped_column(primary_key=True)
    squadron_id: Mapped[int] = mapped_column(sa.ForeignKey("squadrons.id"))
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    #: GeoJSON Polygon or MultiPolygon geometry, as the squadron had it.
    jurisdiction: Mapped[dict] = mapped_column(JSONType)

    squadron: Mapped[Squadron] = relationship()

    __table_args__ = (
        sa.Index("ix_squadron_jurisdictions_squadron_from", "squadron_id", "valid_from"),
    )
