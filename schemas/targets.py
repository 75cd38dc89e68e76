"""Targets: shops and sites, their file (一店一档) and the list filters."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate, validates_schema
from stdnum.cn import uscc as uscc_number
from stdnum.exceptions import ValidationError as NumberError

from fieldapp.risk.scoring import RiskLevel
from fieldapp.targets.models import CreditClass, SitePhase, SiteScale, TargetKind
from schemas.common import (
    BBoxField,
    GeoJSONPolygon,
    LonLat,
    NearField,
    PageArgs,
    Pattern,
    StrictBoolean,
    StrictSchema,
    StrippedText,
    id_field,
    no_control_characters,
)
from schemas.risk import RiskBriefSchema

BUSINESS_TYPE = Pattern(r"^[a-z][a-z0-9_]{1,39}$", error="a business type code such as catering")

SHOP_ONLY = ("business_type", "uscc")
SITE_ONLY = ("permit_no", "scale", "phase", "boundary")


class USCC(fields.String):
    """A unified social credit code (统一社会信用代码), accepted as printed on a business licence
    (with spaces or hyphens, in any case) and loaded in its canonical form, 18 upper-case
    characters: what the column holds (``varchar(18)``), what ``q`` compares and what every
    client is shown, however the code was typed."""

    def __init__(self, **kwargs):
        description = (
            "统一社会信用代码: 18 characters; accepted with spaces or hyphens and in any case,"
            " stored and answered in upper case without them"
        )
        super().__init__(metadata={"description": description}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return uscc_number.validate(text)
        except NumberError as exc:
            raise ma.ValidationError(
                f"not a valid unified social credit code (统一社会信用代码): {exc}"
            ) from None


class TargetName(StrippedText):
    """A target's name (:class:`~schemas.common.StrippedText`): the list, the file and the QR
    label show it; no control characters (the label is XML). One rule for every way a target is
    written (the API, device pushes and their conflict resolutions, the import)."""

    def __init__(self, **kwargs):
        super().__init__(200, **kwargs)


def target_address(**kwargs) -> fields.String:
    """A target's address: up to 300 characters, without control characters (as its name)."""
    return fields.String(validate=[validate.Length(max=300), no_control_characters], **kwargs)


def permit_number(**kwargs) -> fields.String:
    """A site's construction permit number (施工许可证号), without control characters."""
    return fields.String(validate=[validate.Length(min=1, max=60), no_control_characters], **kwargs)


class TargetSchema(ma.Schema):
    id = fields.UUID(dump_only=True)
    kind = fields.Enum(TargetKind, by_value=True, dump_only=True)
    code = fields.String(dump_only=True, metadata={"description": "一店一码: stable QR code"})
    name = fields.String(dump_only=True)
    address = fields.String(dump_only=True)
    squadron_id = fields.Integer(dump_only=True)
    location = fields.Method(
        "_location",
        dump_only=True,
        metadata={
            "description": "WGS-84 {lon, lat}; with original {lon, lat, crs} when a device"
            " reported or moved the point in GCJ-02 or BD-09 (what it sent)"
        },
    )
    credit_class = fields.Enum(CreditClass, by_value=True, dump_only=True)
    sensitive_surroundings = fields.Boolean(dump_only=True)
    business_type = fields.String(dump_only=True, allow_none=True)
    uscc = fields.String(dump_only=True, allow_none=True)
    permit_no = fields.String(dump_only=True, allow_none=True)
    scale = fields.Enum(SiteScale, by_value=True, dump_only=True, allow_none=True)
    phase = fields.Enum(SitePhase, by_value=True, dump_only=True, allow_none=True)
    boundary = fields.Raw(dump_only=True, allow_none=True)
    active = fields.Boolean(dump_only=True)
    version = fields.Integer(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)

    def _location(self, target) -> dict:
        location = {"lon": target.lon, "lat": target.lat}
        if target.location_original:
            location["original"] = target.location_original
        return location


class InspectionBriefSchema(ma.Schema):
    id = fields.UUID(dump_only=True)
    started_at = fields.DateTime(dump_only=True)
    origin = fields.String(dump_only=True)
    outcome = fields.String(dump_only=True, allow_none=True)
    status = fields.String(dump_only=True)
    review_status = fields.String(dump_only=True)
    rectification_deadline = fields.Date(dump_only=True, allow_none=True)
    failed_items = fields.List(fields.String(), dump_only=True)


class ComplaintBriefSchema(ma.Schema):
    id = fields.UUID(dump_only=True)
    received_at = fields.DateTime(dump_only=True)
    category = fields.String(dump_only=True)
    text = fields.String(dump_only=True)
    substantiated = fields.Boolean(dump_only=True, allow_none=True)


class CaseBriefSchema(ma.Schema):
    id = fields.UUID(dump_only=True)
    number = fields.String(dump_only=True)
    opened_at = fields.DateTime(dump_only=True)
    closed_at = fields.DateTime(dump_only=True, allow_none=True)
    item_code = fields.String(dump_only=True, allow_none=True)
    fine_yuan = fields.Integer(dump_only=True, allow_none=True)


class TargetFileSchema(TargetSchema):
    """一店一档: the target with its recent history."""

    recent_inspections = fields.List(fields.Nested(InspectionBriefSchema), dump_only=True)
    open_rectifications = fields.List(fields.Nested(InspectionBriefSchema), dump_only=True)
    complaints = fields.List(fields.Nested(ComplaintBriefSchema), dump_only=True)
    cases = fields.List(fields.Nested(CaseBriefSchema), dump_only=True)
    risk = fields.Nested(RiskBriefSchema, dump_only=True)


class _TargetFields(StrictSchema):
    name = TargetName()
    address = target_address()
    squadron_id = id_field()
    location = fields.Nested(LonLat)
    credit_class = fields.Enum(CreditClass, by_value=True)
    sensitive_surroundings = StrictBoolean()
    business_type = fields.String(validate=BUSINESS_TYPE)
    uscc = USCC(allow_none=True)
    permit_no = permit_number(allow_none=True)
    scale = fields.Enum(SiteScale, by_value=True)
    phase = fields.Enum(SitePhase, by_value=True)
    boundary = GeoJSONPolygon(allow_none=True)
    active = StrictBoolean()


class TargetCreateArgs(_TargetFields):
    kind = fields.Enum(TargetKind, by_value=True, required=True)
    name = TargetName(required=True)
    squadron_id = id_field(required=True)
    location = fields.Nested(LonLat, required=True)

    @validates_schema
    def _fields_fit_kind(self, data, **kwargs):
        kind = data.get("kind")
        errors = {}
        wrong = SITE_ONLY if kind is TargetKind.shop else SHOP_ONLY
        for field in wrong:
            if data.get(field) is not None:
                errors[field] = [f"not a field of a {kind.value}"]
        needed = ("business_type",) if kind is TargetKind.shop else ("scale", "phase")
        for field in needed:
            if data.get(field) is None:
                errors[field] = [f"required for a {kind.value}"]
        if errors:
            raise ma.ValidationError(errors)


class TargetUpdateArgs(_TargetFields):
    """Only the fields given change; ``kind`` and ``code`` never change."""


class TargetListArgs(PageArgs):
    kind = fields.Enum(TargetKind, by_value=True)
    squadron_id = id_field(strict=False)
    level = fields.Enum(RiskLevel, by_value=True, metadata={"description": "risk level"})
    # Stripped: a code read by a scanner comes with a trailing newline or space, and a
    # by-code lookup strips it too. Blank is refused ("may not be blank"), as an empty filter.
    q = StrippedText(
        100,
        metadata={
            "description": "text in the name or address (any case), or the whole of a code"
            " (一店一码), a shop's uscc (any case, separators allowed) or a site's permit_no;"
            " spaces around it are ignored, and a blank one is refused"
        },
    )
    bbox = BBoxField()
    near = NearField(
        metadata={"description": "lon,lat,metres: within that distance, nearest first"}
    )
    active = fields.Boolean(load_default=True)
