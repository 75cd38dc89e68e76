"""Tracks on the wire: the query, and the GeoJSON answer."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from schemas.common import StrictSchema, TimeBound


class TrackArgs(StrictSchema):
    officer_id = fields.UUID(required=True)
    from_ = TimeBound(
        end=False,
        data_key="from",
        required=True,
        metadata={"description": "fixes at or after (a date: its start)"},
    )
    to = TimeBound(
        end=True,
        required=True,
        metadata={"description": "fixes before (a date: that whole day included)"},
    )

    @ma.validates_schema
    def _ordered(self, data, **kwargs):
        if "from_" in data and "to" in data and data["to"] <= data["from_"]:
            raise ma.ValidationError({"to": ["must be after from"]})


class TrackCollectionSchema(ma.Schema):
    """A GeoJSON FeatureCollection (LineString per continuous stretch, Point for a lone fix)
    with foreign members: ``officer_id``, ``from``, ``to``, ``points``, ``points_dropped``,
    ``distance_m``, ``duration_s`` (moving stretches only) and ``gaps``
    [{from, to, seconds, distance_m}]."""

    type = fields.String()
    features = fields.List(fields.Dict())
    officer_id = fields.String()
    # The answer is a dict keyed "from": without ``attribute`` the field looks up "from_"
    # and the period's start is silently missing from the answer.
    from_ = fields.String(data_key="from", attribute="from")
    to = fields.String()
    points = fields.Integer()
    points_dropped = fields.Integer(
        metadata={
            "description": "fixes not drawn: too inaccurate, or taken at the same instant as "
            "a more accurate fix from another of the officer's devices"
        }
    )
    distance_m = fields.Float()
    duration_s = fields.Float()
    gaps = fields.List(fields.Dict())
