"""Sync endpoints. The engine in ``sync/`` does the work; these views parse, authorize and dump."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import Response, current_app, request, url_for
from flask.views import MethodView

from fieldapp.api import Blueprint, json_text_checked
from fieldapp.db import db, utcnow
from fieldapp.errors import APIError, validation_error
from fieldapp.inspections.models import Inspection
from fieldapp.web.compression import compressed
from fieldapp.web.paging import paginate
from fieldapp.web.requests import current_actor, current_policy
from schemas.common import page_schema
from schemas.sync import (
    MAX_BATCH,
    ConflictListArgs,
    ConflictSchema,
    HistoryArgs,
    HistoryEntrySchema,
    PullArgs,
    PullSchema,
    PushArgs,
    PushSchema,
    ResolveArgs,
    ResultSchema,
)
from sync import cursor as cursors
from sync import engine, pull, resolution
from sync.models import Conflict, RecordVersion

blp = Blueprint("sync", __name__, description="Offline sync: push, pull, conflicts, history")


@blp.route("/sync/push")
class PushResource(MethodView):
    @blp.arguments(PushArgs)
    @blp.response(200, PushSchema)
    @blp.errors(
        why={
            403: "`forbidden`: device_id is not the device this token belongs to",
            413: f"`payload_too_large`: more than {MAX_BATCH} changes in the batch, or a body"
            " over FIELDAPP_MAX_JSON_BYTES (counted decoded)",
        }
    )
    def post(self, args):
        """Apply a device's batch of changes; one result per change, in order.

        The body may be sent compressed (``Content-Encoding: gzip`` or ``zstd``); the size
        limit holds for the decoded body.
        """
        if len(args["changes"]) > MAX_BATCH:
            raise APIError(413, "payload_too_large", f"at most {MAX_BATCH} changes a batch")
        actor = current_actor()
        if args["device_id"] != actor.device_id:
            raise APIError(403, "forbidden", "device_id is not the device this token belongs to")
        now = utcnow()
        ctx = engine.PushContext(
            actor=actor,
            policy=current_policy(),
            device_id=actor.device_id,
            now=now,
            text_checked=json_text_checked(request),
        )
        results = engine.push(ctx, args["changes"])
        # Written directly: the results are built in wire form, and PushSchema's dump took
        # 7 µs a result, 0.7 ms a batch (PushSchema documents the shape;
        # tests/test_sync_wire.py holds the two together).
        return current_app.json.response(
            {"results": [_in_result_order(r) for r in results], "server_time": now.isoformat()}
        )


#: The order of a result's fields on the wire (a replayed result is stored as jsonb, which
#: keeps its own order).
_RESULT_FIELDS = tuple(ResultSchema().fields)


def _in_result_order(result: dict) -> dict:
    return {name: result[name] for name in _RESULT_FIELDS if name in result}


@blp.route("/sync/pull")
class PullResource(MethodView):
    @blp.arguments(PullArgs, location="query")
    @blp.response(200, PullSchema)
    @compressed
    def get(self, args):
        """Everything in your scope changed after ``cursor``, in commit order."""
        try:
            page = pull.pull(
                current_policy(),
                args.get("cursor"),
                args["limit"],
                current_app.config["SECRET_KEY"],
            )
        except cursors.CursorError as exc:
            raise validation_error({"cursor": [str(exc)]}, location="query") from None
        # Written directly: thousands of records a page, already in wire form (PullSchema
        # documents the shape; tests/test_sync_wire.py holds the two together).
        return Response(pull.page_json(page), mimetype="application/json")


@blp.route("/conflicts")
class ConflictsResource(MethodView):
    @blp.arguments(ConflictListArgs, location="query")
    @blp.response(200, page_schema(ConflictSchema, "ConflictPage"))
    def get(self, args):
        """The conflict log of your scope, filtered. By default in the order a leader works
        through it: open entries first, amendments to approved records, then deletes, then
        field conflicts, each oldest first (``order=oldest|newest`` for plain time order)."""
        page, per_page = args.pop("page"), args.pop("per_page")
        filters = resolution.ConflictFilters(
            **{k: v for k, v in args.items() if k not in ("from_", "to")},
            logged_from=args.get("from_"),
            logged_before=args.get("to"),
        )
        query = resolution.search_conflicts(current_policy().scoped(Conflict), filters)
        return paginate(query, page, per_page)


@blp.route("/conflicts/<uuid:conflict_id>/resolve")
class ResolveResource(MethodView):
    @blp.arguments(ResolveArgs)
    @blp.response(200, ConflictSchema)
    @blp.forbidden("conflict.resolve")
    @blp.errors(
        why={
            409: "`version_conflict`: the entry is resolved already, or what the choice would"
            " write (or the record an accepted delete would remove) changed after the entry"
            " was logged (read the record, then choose again)",
        }
    )
    def post(self, args, conflict_id: uuid.UUID):
        """Settle a conflict: keep the server's value, the device's, or a given one."""
        policy = current_policy()
        conflict = policy.load_to_write(Conflict, conflict_id, "conflict")
        policy.require("conflict.resolve", conflict)
        return resolution.resolve(
            current_actor(), conflict, args["keep"], args.get("value"), utcnow()
        )


@blp.route("/inspections/<uuid:inspection_id>/history")
class HistoryResource(MethodView):
    @blp.arguments(HistoryArgs, location="query")
    @blp.response(
        200,
        HistoryEntrySchema(many=True),
        headers={
            "Link": {
                "description": '`<...?page=N&per_page=M>; rel="next"` when later versions'
                " follow on another page (RFC 8288)",
                "schema": {"type": "string"},
            }
        },
    )
    def get(self, args, inspection_id: uuid.UUID):
        """Every version of the inspection, oldest first: what changed, who, from which device.

        Paged like every list: one answer holds at most ``per_page`` versions (default and
        most: 200, more than an inspection's record reaches in practice); when later versions
        follow, the ``Link`` header names the next page.
        """
        current_policy().load(Inspection, inspection_id, "inspection")
        page, per_page = args["page"], args["per_page"]
        of_record = sa.and_(
            RecordVersion.entity == "inspection", RecordVersion.record_id == inspection_id
        )
        versions = db.session.scalars(
            sa.select(RecordVersion)
            .where(of_record)
            .order_by(RecordVersion.version)
            .limit(per_page + 1)
            .offset((page - 1) * per_page)
        ).all()
        has_more = len(versions) > per_page
        versions = versions[:per_page]
        # What changed is read against the version before: for a later page, the one before it.
        previous = {}
        if page > 1 and versions:
            before = db.session.scalar(
                sa.select(RecordVersion.data)
                .where(of_record, RecordVersion.version < versions[0].version)
                .order_by(RecordVersion.version.desc())
                .limit(1)
            )
            previous = before or {}
        history = []
        for version in versions:
            # A field written with the value it had (a colleague confirming it, which moves its
            # clock) is listed too, from and to the same value: it is why the version exists.
            written = set(version.changed or ())
            changes = {
                name: {"from": previous.get(name), "to": value}
                for name, value in version.data.items()
                if name != "version" and (previous.get(name) != value or name in written)
            }
            history.append(
                {
                    "version": version.version,
                    "at": version.at,
                    "user_id": version.user_id,
                    "device_id": version.device_id,
                    "change_id": version.change_id,
                    "hlc": version.hlc,
                    "changes": changes,
                }
            )
            previous = version.data
        if not has_more:
            return history
        following = url_for(
            request.endpoint, inspection_id=inspection_id, page=page + 1, per_page=per_page
        )
        return history, 200, {"Link": f'<{following}>; rel="next"'}
