"""The service index and the health check on the wire."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields


class ServiceIndexSchema(ma.Schema):
    """Where to start."""

    service = fields.String(dump_only=True)
    api = fields.String(dump_only=True, metadata={"description": "the API's path prefix"})
    openapi = fields.String(dump_only=True, metadata={"description": "this OpenAPI document"})
    docs = fields.String(dump_only=True, metadata={"description": "the browsable docs"})


class HealthSchema(ma.Schema):
    status = fields.String(dump_only=True, metadata={"description": "ok: the database answers"})
