"""Targets: one record per shop or site with all its history (一店一档) and a stable code."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldapp.db import JSONType, Syncable, UTCDateTime, db, enum_column, new_uuid, utcnow
from fieldapp.org.models import Squadron


class TargetKind(enum.StrEnum):
    shop = "shop"  # 沿街商户
    site = "site"  # 建筑工地


class CreditClass(enum.StrEnum):
    """Public credit class (信用等级), A best to D worst; feeds risk (风险+信用)."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"


class SiteScale(enum.StrEnum):
    large = "large"  # 大型
    medium = "medium"  # 中型
    small = "small"  # 小型
    micro = "micro"  # 微型


class SitePhase(enum.StrEnum):
    earthwork = "earthwork"  # 土方
    foundation = "foundation"  # 基础
    structure = "structure"  # 主体结构
    finishing = "finishing"  # 装饰装修


class Target(Syncable, db.Model):
    __tablename__ = "targets"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    kind: Mapped[TargetKind] = mapped_column(enum_column(TargetKind))
    #: 一店一码: printed as a QR code on the shop front; never changes, never reused.
    code: Mapped[str] = mapped_column(sa.String(16), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    address: Mapped[str] = mapped_column(sa.String(300), default="")
    squadron_id: Mapped[int] = mapped_column(sa.ForeignKey("squadrons.id"))
    # WGS-84 point: a shop's door, a site's main gate.
    lon: Mapped[float]
    lat: Mapped[float]
    #: What the device that reported or last moved the point sent, when it was not WGS-84
    #: (``{lon, lat, crs}``, GCJ-02 or BD-09): kept as inspections keep theirs (DESIGN.md).
    location_original: Mapped[dict | None] = mapped_column(JSONType)
    credit_class: Mapped[CreditClass] = mapped_column(
        enum_column(CreditClass), default=CreditClass.B
    )
    #: Near a school, hospital or residential block: raises inherent risk.
    sensitive_surroundings: Mapped[bool] = mapped_column(default=False)
    # shop
    business_type: Mapped[str | None] = mapped_column(sa.String(40))
    uscc: Mapped[str | None] = mapped_column(sa.String(18))  # 统一社会信用代码
    # site
    permit_no: Mapped[str | None] = mapped_column(sa.String(60))
    scale: Mapped[SiteScale | None] = mapped_column(enum_column(SiteScale))
    phase: Mapped[SitePhase | None] = mapped_column(enum_column(SitePhase))
    boundary: Mapped[dict | None] = mapped_column(JSONType)  # GeoJSON Polygon
    active: Mapped[bool] = mapped_column(default=True)
    #: Field -> clock of the write that set its current value (devices edit targets too).
    field_clocks: Mapped[dict] = mapped_column(
        JSONType, default=dict, server_default=sa.text("'{}'")
    )
    #: Field -> the version an edit last wrote it at (none: the create's).
    field_versions: Mapped[dict] = mapped_column(
        JSONType, default=dict, server_default=sa.text("'{}'")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    squadron: Mapped[Squadron] = relationship()

    #: The fields devices may report or correct (see sync's target rules).
    DEVICE_FIELDS = (
        "name",
        "address",
        "location",
        "business_type",
        "uscc",
        "permit_no",
        "scale",
        "phase",
    )

    def device_fields(self) -> dict:
        """The device-writable fields in wire form: what three-way merge compares."""
        return {
            "name": self.name,
            "address": self.address,
            "location": {"lon": self.lon, "lat": self.lat},
            "business_type": self.business_type,
            "uscc": self.uscc,
            "permit_no": self.permit_no,
            # str() of the enum member is its value, and a plain string stays as it is.
            "scale": str(self.scale) if self.scale else None,
            "phase": str(self.phase) if self.phase else None,
        }

    def version_fields(self) -> dict:
        """What a version snapshot of the target holds: its device fields, the location with
        what the device sent (``original``) when that was not WGS-84, as the wire form has it.
        Merges compare :meth:`device_fields` (a location is the same point in any system)."""
        fields = self.device_fields()
        if self.location_original:
            fields["location"]["original"] = self.location_original
        return fields

    __table_args__ = (
        sa.Index("ix_targets_squadron_kind", "squadron_id", "kind"),
        # Pull: a squadron's changes after a cursor, read straight off one index.
        sa.Index("ix_targets_squadron_seq", "squadron_id", "change_seq"),
        sa.Index("ix_targets_lon_lat", "lon", "lat"),
        sa.Index("ix_targets_name", "name"),
        sa.CheckConstraint("lon BETWEEN -180 AND 180 AND lat BETWEEN -90 AND 90", name="lon_lat"),
        sa.CheckConstraint(
            "kind <> 'shop' OR business_type IS NOT NULL", name="shop_has_business_type"
        ),
        sa.CheckConstraint(
            "kind <> 'site' OR (scale IS NOT NULL AND phase IS NOT NULL)", name="site_has_scale"
        ),
    )
