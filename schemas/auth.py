"""Sign-in, the current user, user administration and devices."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from fieldapp.auth.models import Role
from schemas.common import (
    PageArgs,
    Pattern,
    StrictBoolean,
    StrictSchema,
    StrippedText,
    id_field,
)
from sync.hlc import SERVER_NODE


class DeviceId(Pattern):
    """A device id: 1-64 letters, digits, ``. _ : -``, and not the server's own clock node
    (:data:`sync.hlc.SERVER_NODE`). The merge rules tell the server's edits from a device's by
    that node: a pad called ``server`` would be taken for the server, its edits logged as
    conflicts with itself and its re-assertions not taken. Refused in any case, so that no
    pad's id reads as the server's in a conflict entry or a field's clock."""

    RESERVED_MESSAGE = f"`{SERVER_NODE}` is the server's own name: choose another device id"

    def __init__(self):
        # The pattern refuses the reserved name too, so that the OpenAPI document says so
        # (JSON Schema patterns have no case-insensitive flag: hence the classes).
        reserved = "".join(f"[{c.upper()}{c}]" for c in SERVER_NODE)
        super().__init__(
            rf"^(?!{reserved}$)[A-Za-z0-9._:-]{{1,64}}$",
            error=f"1-64 characters: letters, digits, . _ : - (not {SERVER_NODE})",
        )

    def __call__(self, value):
        if isinstance(value, str) and value.lower() == SERVER_NODE:
            raise ma.ValidationError(self.RESERVED_MESSAGE)
        return super().__call__(value)


DEVICE_ID = DeviceId()
USERNAME = Pattern(r"^[a-z0-9_.-]{2,64}$", error="2-64 characters: a-z, 0-9, _ . -")

#: Strength (not common, not the username) is checked by the operations, for the CLI too.
PASSWORD = validate.Length(min=8, max=256)


class TokenArgs(StrictSchema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))
    device_id = fields.String(required=True, validate=DEVICE_ID)
    device_name = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=120)
    )


class UserSchema(ma.Schema):
    id = fields.UUID(dump_only=True)
    username = fields.String(dump_only=True)
    name = fields.String(dump_only=True)
    role = fields.Enum(Role, by_value=True, dump_only=True)
    squadron_id = fields.Integer(dump_only=True, allow_none=True)
    district_id = fields.Integer(dump_only=True)


class UserAdminSchema(UserSchema):
    active = fields.Boolean(dump_only=True)
    version = fields.Integer(dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class TokenSchema(ma.Schema):
    token = fields.String(dump_only=True)
    expires_at = fields.DateTime(dump_only=True)
    user = fields.Nested(UserSchema, dump_only=True)


class MeSchema(UserSchema):
    device_id = fields.String(dump_only=True)
    token_expires_at = fields.DateTime(dump_only=True)


class UserCreateArgs(StrictSchema):
    username = fields.String(required=True, validate=USERNAME)
    name = StrippedText(80, required=True)
    role = fields.Enum(Role, by_value=True, required=True)
    password = fields.String(required=True, validate=PASSWORD)
    squadron_id = id_field(load_default=None, allow_none=True)
    district_id = id_field(load_default=None, allow_none=True)


class UserUpdateArgs(StrictSchema):
    name = StrippedText(80)
    role = fields.Enum(Role, by_value=True)
    password = fields.String(validate=PASSWORD)
    squadron_id = id_field(allow_none=True)
    district_id = id_field(
        metadata={"description": "a squadron member's must be their squadron's district"}
    )
    active = StrictBoolean()


class UserListArgs(PageArgs):
    role = fields.Enum(Role, by_value=True)
    squadron_id = id_field(strict=False)


class DeviceSchema(ma.Schema):
    id = fields.String(dump_only=True)
    name = fields.String(dump_only=True, allow_none=True)
    first_seen_at = fields.DateTime(dump_only=True)
    last_seen_at = fields.DateTime(dump_only=True)
    last_user_id = fields.UUID(dump_only=True, allow_none=True)
    revoked = fields.Boolean(dump_only=True)
    revoked_at = fields.DateTime(dump_only=True, allow_none=True)


class DeviceRevokeSchema(DeviceSchema):
    revoked_tokens = fields.Integer(dump_only=True)
