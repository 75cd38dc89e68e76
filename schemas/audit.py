"""The audit log on the wire: the list's filters, an entry, and the chain check's answer."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from schemas.common import TimeBound, TimeRangeArgs

#: Every ``entity`` the audit log writes entries about (the third argument of
#: ``fieldapp.audit.operations.record``): the list's filter takes these only, so a name mistyped
#: (``inspections``) is a 422, not an empty history. tests/test_audit.py holds it to the code.
AUDITED_ENTITIES = (
    "case",
    "case_review",
    "checklist",
    "complaint",
    "conflict",
    "device",
    "district",
    "draw",
    "inspection",
    "photo",
    "risk",
    "risk_settings",
    "squadron",
    "supervision_order",
    "target",
    "task",
    "token",
    "track",
    "user",
)


class AuditListArgs(TimeRangeArgs):
    entity = fields.String(validate=validate.OneOf(AUDITED_ENTITIES))
    record_id = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={
            "description": "the record's id; a UUID is found however it is written (capitals,"
            " no dashes)"
        },
    )
    actor_id = fields.UUID()
    from_ = TimeBound(
        end=False,
        data_key="from",
        metadata={"description": "entries at or after (a date: from its start in Shanghai)"},
    )
    to = TimeBound(end=True, metadata={"description": "entries before (a date: that whole day)"})


class AuditEntrySchema(ma.Schema):
    """One entry: who did what to which record, the values before and after, and its links."""

    seq = fields.Integer(dump_only=True)
    at = fields.DateTime(dump_only=True)
    actor_id = fields.UUID(dump_only=True, allow_none=True)
    device_id = fields.String(dump_only=True, allow_none=True)
    request_id = fields.String(dump_only=True, allow_none=True)
    district_id = fields.Integer(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "whose supervisors read the entry: the district of the record it is"
            " about, else of its actor, when it was written (not hashed)"
        },
    )
    action = fields.String(dump_only=True)
    entity = fields.String(dump_only=True)
    record_id = fields.String(dump_only=True, allow_none=True)
    before = fields.Raw(dump_only=True, allow_none=True)
    after = fields.Raw(dump_only=True, allow_none=True)
    prev_hash = fields.String(dump_only=True)
    hash = fields.String(
        dump_only=True, metadata={"description": "SHA-256 of the entry's canonical JSON"}
    )


class AuditVerifySchema(ma.Schema):
    """The chain check: ``ok`` false names the first entry altered, removed or moved."""

    ok = fields.Boolean(dump_only=True)
    entries = fields.Integer(dump_only=True, metadata={"description": "entries checked and good"})
    first_bad_seq = fields.Integer(dump_only=True, allow_none=True)
    problem = fields.String(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "altered, missing, unexpected (entries added behind the app) or"
            " head_missing (the chain head's row is gone; first_bad_seq is then null)"
        },
    )
    last_seq = fields.Integer(dump_only=True, metadata={"description": "last good entry"})
    last_hash = fields.String(
        dump_only=True,
        allow_none=True,
        metadata={"description": "its hash: write it down to detect a later rewrite of all"},
    )
