"""Districts and squadrons."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from schemas.common import GeoJSONPolygon, StrictSchema, id_field


class SquadronSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    district_id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    jurisdiction = fields.Raw(dump_only=True, metadata={"description": "GeoJSON geometry"})
    version = fields.Integer(dump_only=True)


class SquadronCreateArgs(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=80))
    district_id = id_field(required=True)
    jurisdiction = GeoJSONPolygon(allow_multi=True, required=True)


class SquadronUpdateArgs(StrictSchema):
    name = fields.String(validate=validate.Length(min=1, max=80))
    jurisdiction = GeoJSONPolygon(allow_multi=True)
