"""The audit log for supervisors and admins: entries by record, actor and time; the chain check."""

from __future__ import annotations

from flask.views import MethodView

from fieldapp.api import Blueprint
from fieldapp.audit import operations
from fieldapp.audit.models import AuditEntry
from fieldapp.db import db
from fieldapp.web.paging import paginate
from fieldapp.web.requests import current_policy
from schemas.audit import AuditEntrySchema, AuditListArgs, AuditVerifySchema
from schemas.common import page_schema

blp = Blueprint("audit", __name__, description="Tamper-evident audit log")


@blp.route("/audit")
class AuditResource(MethodView):
    @blp.arguments(AuditListArgs, location="query")
    @blp.response(200, page_schema(AuditEntrySchema, "AuditEntryPage"))
    @blp.forbidden("audit.read")
    def get(self, args):
        """Audit entries, newest first: admins all; a supervisor those of their district (the
        district of the record each entry is about, else of its actor, when it was written)
        and those of no district."""
        policy = current_policy()
        policy.require("audit.read")
        page, per_page = args.pop("page"), args.pop("per_page")
        start, end = args.pop("from_", None), args.pop("to", None)
        query = operations.entries_query(start=start, end=end, **args).where(
            policy.readable(AuditEntry)
        )
        return paginate(query, page, per_page)


@blp.route("/audit/verify")
class AuditVerifyResource(MethodView):
    @blp.response(200, AuditVerifySchema)
    @blp.forbidden("audit.read")
    def get(self):
        """Re-hash the whole chain and name the first entry altered, removed or moved."""
        current_policy().require("audit.read")
        return operations.verify(db.session())
