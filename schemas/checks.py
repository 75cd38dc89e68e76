"""Automatic case-file flags on the wire."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields


class FlagSchema(ma.Schema):
    flag = fields.String(
        dump_only=True, metadata={"description": "stable code, e.g. location_far_from_target"}
    )
    detail = fields.String(dump_only=True, metadata={"description": "for a supervisor to read"})
    facts = fields.Dict(dump_only=True, metadata={"description": "the numbers behind the detail"})
