"""Sign-in, the current user, users and devices."""

from __future__ import annotations

import uuid

from flask import current_app, g, request
from flask.views import MethodView

from fieldapp.api import Blueprint
from fieldapp.auth import operations
from fieldapp.auth.models import Device, User
from fieldapp.db import db
from fieldapp.errors import validation_error
from fieldapp.org.models import District, Squadron
from fieldapp.web.paging import paginate
from fieldapp.web.requests import (
    current_actor,
    current_policy,
    keep_changes_on_error,
    log_caller,
    public,
    signs_in,
)
from schemas.auth import (
    DeviceRevokeSchema,
    DeviceSchema,
    MeSchema,
    TokenArgs,
    TokenSchema,
    UserAdminSchema,
    UserCreateArgs,
    UserListArgs,
    UserUpdateArgs,
)
from schemas.common import NoBodyArgs, PageArgs, page_schema

blp = Blueprint("auth", __name__, description="Sign-in, users and devices")


def _settings() -> operations.AuthSettings:
    return current_app.extensions["fieldapp.auth"]


@blp.route("/auth/token")
class TokenResource(MethodView):
    @public
    @signs_in
    @blp.doc(security=[])
    @blp.arguments(TokenArgs)
    @blp.response(201, TokenSchema)
    @blp.errors(
        429,
        why={
            401: "`unauthenticated`: wrong username or password, or a disabled account",
            403: "`forbidden`: this device has been revoked; an admin reinstates it",
        },
    )
    def post(self, args):
        """Sign in on a device: a bearer token bound to that device."""
        keep_changes_on_error()  # failed attempts must be counted even though we answer 401
        # The device is known whatever the answer; the user only once the password matched
        # (a failed attempt's username may be a password typed in the wrong field).
        log_caller(device_id=args["device_id"])
        issued = operations.login(
            _settings(),
            username=args["username"],
            password=args["password"],
            device_id=args["device_id"],
            device_name=args["device_name"],
            remote_addr=request.remote_addr,
            request_id=g.request_id,
        )
        log_caller(username=issued.token.user.username)
        return {
            "token": issued.secret,
            "expires_at": issued.token.expires_at,
            "user": issued.token.user,
        }

    @blp.arguments(NoBodyArgs, required=False)
    @blp.response(204)
    def delete(self, _no_body):
        """Sign out: revoke the token this request carries."""
        operations.logout(current_actor(), g.token)


@blp.route("/me")
class MeResource(MethodView):
    @blp.response(200, MeSchema)
    def get(self):
        """The signed-in user, with the device and token expiry of this session."""
        user = current_actor().user
        return {
            **{
                k: getattr(user, k)
                for k in ("id", "username", "name", "role", "squadron_id", "district_id")
            },
            "device_id": g.token.device_id,
            "token_expires_at": g.token.expires_at,
        }


def _squadron_or_422(squadron_id: int | None) -> Squadron | None:
    if squadron_id is None:
        return None
    squadron = db.session.get(Squadron, squadron_id)
    if squadron is None:
        raise validation_error({"squadron_id": [f"no squadron {squadron_id}"]})
    return squadron


def _district_or_422(district_id: int | None) -> int | None:
    if district_id is not None and db.session.get(District, district_id) is None:
        raise validation_error({"district_id": [f"no district {district_id}"]})
    return district_id


@blp.route("/users")
class UsersResource(MethodView):
    @blp.arguments(UserListArgs, location="query")
    @blp.response(200, page_schema(UserAdminSchema, "UserPage"))
    def get(self, filters):
        """Users the caller may see (own squadron; supervisors their district; admins all)."""
        paging = {"page": filters.pop("page"), "per_page": filters.pop("per_page")}
        query = current_policy().scoped(User)
        if "role" in filters:
            query = query.where(User.role == filters["role"])
        if "squadron_id" in filters:
            query = query.where(User.squadron_id == filters["squadron_id"])
        return paginate(query.order_by(User.username), **paging)

    @blp.arguments(UserCreateArgs)
    @blp.response(201, UserAdminSchema)
    @blp.forbidden("user.manage")
    def post(self, args):
        """Add a user (admin)."""
        policy = current_policy()
        policy.require("user.manage")
        squadron = _squadron_or_422(args.pop("squadron_id"))
        district_id = _district_or_422(args.pop("district_id"))
        if district_id is None:  # the squadron's, else the admin's own
            district_id = squadron.district_id if squadron else policy.user.district_id
        return operations.create_user(
            current_actor(), _settings(), squadron=squadron, district_id=district_id, **args
        )


@blp.route("/users/<uuid:user_id>")
class UserResource(MethodView):
    @blp.etag
    @blp.response(200, UserAdminSchema)
    def get(self, user_id: uuid.UUID):
        """One user."""
        user = current_policy().load(User, user_id, "user")
        blp.set_etag({"id": str(user.id), "version": user.version})
        return user

    @blp.etag
    @blp.arguments(UserUpdateArgs)
    @blp.response(200, UserAdminSchema)
    @blp.forbidden("user.manage")
    def patch(self, changes, user_id: uuid.UUID):
        """Change a user's name, role, squadron, district, password or active flag (admin;
        If-Match). A squadron member's district is their squadron's; a supervisor or admin
        has none, and a role change to one leaves the squadron. Disabling an officer (or
        making them something else) cancels their open tasks that no other active officer
        carries, each with its reason."""
        policy = current_policy()
        user = policy.load_to_write(User, user_id, "user")
        policy.require("user.manage")
        blp.check_etag({"id": str(user.id), "version": user.version})
        if "squadron_id" in changes:
            changes["squadron"] = _squadron_or_422(changes.pop("squadron_id"))
        _district_or_422(changes.get("district_id"))
        operations.update_user(current_actor(), _settings(), user, changes)
        db.session.flush()
        blp.set_etag({"id": str(user.id), "version": user.version})
        return user


@blp.route("/devices")
class DevicesResource(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(DeviceSchema, "DevicePage"))
    def get(self, paging):
        """Devices that have signed in (admin: all; others: their own)."""
        query = current_policy().scoped(Device).order_by(Device.last_seen_at.desc(), Device.id)
        return paginate(query, **paging)


def _device_for_admin(device_id: str) -> Device:
    policy = current_policy()
    device = policy.load_to_write(Device, device_id, "device")
    policy.require("device.manage")
    return device


@blp.route("/devices/<string:device_id>/revoke")
class DeviceRevokeResource(MethodView):
    @blp.arguments(NoBodyArgs, required=False)
    @blp.response(200, DeviceRevokeSchema)
    @blp.forbidden("device.manage")
    def post(self, _no_body, device_id: str):
        """Revoke a lost or stolen device: its tokens stop working, it cannot sign in (admin)."""
        device = _device_for_admin(device_id)
        revoked = operations.revoke_device(current_actor(), device)
        return {
            **{name: getattr(device, name) for name in DeviceSchema().fields},
            "revoked_tokens": revoked,
        }


@blp.route("/devices/<string:device_id>/reinstate")
class DeviceReinstateResource(MethodView):
    @blp.arguments(NoBodyArgs, required=False)
    @blp.response(200, DeviceSchema)
    @blp.forbidden("device.manage")
    def post(self, _no_body, device_id: str):
        """Let a recovered device sign in again (admin); its old tokens stay revoked."""
        device = _device_for_admin(device_id)
        operations.reinstate_device(current_actor(), device)
        return device
