"""Districts (区局) and squadrons (中队)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from schemas.common import GeoJSONPolygon, Pattern, StrictSchema, StrippedText, id_field

#: An administrative division code (行政区划代码): six digits for a district (宝山区 310113),
#: nine or twelve for a street or town below it.
DISTRICT_CODE = Pattern(
    r"^[0-9]{6}(?:[0-9]{3}){0,2}$", error="an administrative code: 6, 9 or 12 digits (310113)"
)


class DistrictSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    code = fields.String(dump_only=True, metadata={"description": "行政区划代码, e.g. 310113"})
    name = fields.String(dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class DistrictCreateArgs(StrictSchema):
    code = fields.String(required=True, validate=DISTRICT_CODE)
    name = StrippedText(80, required=True)


class SquadronSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    district_id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    jurisdiction = fields.Raw(dump_only=True, metadata={"description": "GeoJSON geometry"})
    version = fields.Integer(dump_only=True)


class SquadronCreateArgs(StrictSchema):
    name = StrippedText(80, required=True)
    district_id = id_field(required=True)
    jurisdiction = GeoJSONPolygon(allow_multi=True, required=True)


class SquadronUpdateArgs(StrictSchema):
    name = StrippedText(80)
    jurisdiction = GeoJSONPolygon(allow_multi=True)


class JurisdictionDrawingArgs(StrictSchema):
    id = id_field(required=True, metadata={"description": "a squadron of the district"})
    jurisdiction = GeoJSONPolygon(allow_multi=True, required=True)


class JurisdictionsRedrawArgs(StrictSchema):
    """New jurisdictions for some squadrons of a district, judged together; the squadrons not
    listed keep theirs."""

    squadrons = fields.List(
        fields.Nested(JurisdictionDrawingArgs),
        required=True,
        validate=validate.Length(min=1, max=200),
    )


class DistrictJurisdictionsSchema(ma.Schema):
    """A district's map: every squadron with its jurisdiction (a district has a handful)."""

    district_id = fields.Integer(dump_only=True)
    squadrons = fields.List(fields.Nested(SquadronSchema), dump_only=True)


class JurisdictionsRedrawnSchema(DistrictJurisdictionsSchema):
    targets_moved = fields.Integer(
        dump_only=True,
        metadata={
            "description": "how many active targets followed the ground to another squadron"
            " (each is in the audit log as a target.update)"
        },
    )
