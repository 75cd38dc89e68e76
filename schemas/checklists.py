"""Checklists (standardized forms) and their versions."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate, validates_schema

from fieldapp.checklists.models import Severity
from fieldapp.targets.models import SitePhase, TargetKind
from schemas.common import (
    ID_RANGE,
    PageArgs,
    Pattern,
    StrictBoolean,
    StrictSchema,
    StrippedText,
)


class ChecklistItemSchema(ma.Schema):
    code = fields.String(dump_only=True)
    text = fields.String(dump_only=True)
    severity = fields.Enum(Severity, by_value=True, dump_only=True)
    phases = fields.List(fields.String(), dump_only=True)
    legal_basis = fields.String(dump_only=True)


class ChecklistSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    kind = fields.Enum(TargetKind, by_value=True, dump_only=True)
    version = fields.Integer(dump_only=True)
    title = fields.String(dump_only=True)
    active = fields.Boolean(
        dump_only=True, metadata={"description": "false: retired (no longer listed)"}
    )
    published_at = fields.DateTime(dump_only=True)
    items = fields.List(fields.Nested(ChecklistItemSchema), dump_only=True)


def _each_phase_once(phases: list[SitePhase]) -> None:
    """A phase named twice would be served so to every device (and mean nothing more)."""
    twice = sorted({p.value for p in phases if phases.count(p) > 1})
    if twice:
        raise ma.ValidationError(f"a phase is named twice: {', '.join(twice)}")


class ChecklistItemArgs(StrictSchema):
    code = fields.String(required=True, validate=Pattern(r"^[A-Z][A-Z0-9]{1,15}$"))
    text = StrippedText(500, required=True)
    severity = fields.Enum(Severity, by_value=True, required=True)
    phases = fields.List(
        fields.Enum(SitePhase, by_value=True), load_default=list, validate=_each_phase_once
    )
    legal_basis = fields.String(load_default="", validate=validate.Length(max=300))


class ChecklistVersionArgs(StrictSchema):
    """A new version: the whole list of items (versions are immutable, not patched)."""

    title = StrippedText(200, required=True)
    items = fields.List(
        fields.Nested(ChecklistItemArgs), required=True, validate=validate.Length(min=1, max=200)
    )

    @validates_schema
    def _unique_codes(self, data, **kwargs):
        codes = [item["code"] for item in data.get("items", [])]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ma.ValidationError({"items": [f"duplicate item codes: {', '.join(duplicates)}"]})


class ChecklistCreateArgs(ChecklistVersionArgs):
    kind = fields.Enum(TargetKind, by_value=True, required=True)

    @validates_schema
    def _phases_only_for_sites(self, data, **kwargs):
        if data.get("kind") is TargetKind.shop and any(
            i.get("phases") for i in data.get("items", [])
        ):
            raise ma.ValidationError({"items": ["shop checklist items have no phases"]})


class ChecklistUpdateArgs(StrictSchema):
    """Retire (``false``) or reinstate (``true``) a checklist."""

    active = StrictBoolean(required=True)


class ChecklistListArgs(PageArgs):
    kind = fields.Enum(TargetKind, by_value=True)


class ChecklistGetArgs(StrictSchema):
    version = fields.Integer(validate=ID_RANGE)
