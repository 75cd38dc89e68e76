"""The monthly report: JSON for screens, CSV for the spreadsheet each unit files by the 25th."""

from __future__ import annotations

import csv
import io

from flask import Response
from flask.views import MethodView

from fieldapp.api import Blueprint
from fieldapp.auth.models import Role
from fieldapp.db import db, utcnow
from fieldapp.org.models import Squadron
from fieldapp.reports import operations
from fieldapp.web.requests import current_policy
from schemas.reports import MonthlyReportArgs, MonthlyReportSchema

blp = Blueprint("reports", __name__, description="Monthly report (月报)")

#: The CSV answer in the OpenAPI document, beside the JSON one (the same status, two media).
CSV_CONTENT = {
    "schema": {"type": "string"},
    "example": "month,squadron_id,squadron_name,inspections.total,...,generated_at,"
    "audit_head.seq,audit_head.hash\r\n"
    "2026-10,1,吴淞中队,128,...,2026-11-03T02:00:00+00:00,48213,4c270bef...\r\n"
    "2026-10,total,,128,...,2026-11-03T02:00:00+00:00,48213,4c270bef...\r\n",
}


@blp.route("/reports/monthly")
class MonthlyReportResource(MethodView):
    @blp.arguments(MonthlyReportArgs, location="query")
    @blp.response(
        200,
        MonthlyReportSchema,
        description="format=json (the default): the report; format=csv: the same figures as"
        " a spreadsheet (text/csv, UTF-8 with a BOM), one row per squadron and a total row,"
        " each ending with generated_at and the audit head; a text cell that would start a"
        " formula (=, +, -, @) is prefixed with a single quote",
    )
    @blp.doc(responses={200: {"content": {"text/csv": CSV_CONTENT}}})
    @blp.forbidden("report.read")
    @blp.errors(why={404: "`not_found`: squadron_id names no squadron of the caller's scope"})
    def get(self, args):
        """Per squadron: inspections by origin and outcome, cases, rectifications, risk levels
        and changes, sync conflicts, supervision orders. Leaders: their squadron; supervisors
        and admins: the district, or one squadron with ``squadron_id``."""
        policy = current_policy()
        squadron_id = args.get("squadron_id")
        if squadron_id is None and policy.role is Role.leader:
            squadron_id = policy.user.squadron_id
        if squadron_id is not None:
            squadrons = [policy.load(Squadron, squadron_id, "squadron")]
        policy.require_to_read("report.read", squadron_id, "squadron")
        if squadron_id is None:
            squadrons = list(db.session.scalars(policy.scoped(Squadron).order_by(Squadron.id)))
        now = utcnow()
        period = operations.month_period(args.get("month") or operations.current_month(now), now)
        report = operations.monthly_report(squadrons, period)
        if args["format"] == "csv":
            return _csv(report)
        return report


def _csv(report: dict) -> Response:
    columns, rows = operations.csv_rows(report)
    out = io.StringIO()
    out.write("\ufeff")  # a BOM, so spreadsheet programs read the Chinese names as UTF-8
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="monthly-report-{report["month"]}.csv"'
        },
    )
