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

DEVICE_ID = Pattern(r"^[A-Za-z0-9._:-]{1,64}$", error="1-64 characters: letters, digits, . _ : -")
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
