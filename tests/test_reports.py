"""The monthly report: every figure checked against a known set of records, month edges in
Shanghai time, CSV the same as JSON, and who sees which squadrons."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from fieldapp.checks.models import FlagCode
from fieldapp.checks.operations import CheckSettings, check_inspections
from fieldapp.db import db
from fieldapp.inspections.models import Case, Inspection
from fieldapp.reports.operations import flatten, spreadsheet_cell
from fieldapp.risk.models import RiskLevelChange, TargetRisk
from fieldapp.supervision.models import SupervisionOrder
from sync.models import Conflict
from tests.conftest import NO_SUCH_ID, assert_error, audit_entries, etag_of, move_target
from tests.review_helpers import FAILED_S03, inspection_path, push_inspection, review_ok
from tests.sync_helpers import FakeDevice

REPORT = "/api/v1/reports/monthly"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def add_inspection(
    world, target: str, started: datetime, origin: str, outcome, **extra
) -> uuid.UUID:
    row = world.targets[target]
    ident = uuid.uuid4()
    db.session.execute(
        sa.insert(Inspection.__table__).values(
            id=ident,
            target_id=row.id,
            squadron_id=row.squadron_id,
            checklist_id=world.checklists["shop"].id,
            checklist_version=1,
            origin=origin,
            started_at=started,
            ended_at=started + timedelta(minutes=20),
            lon=121.47,
            lat=31.37,
            answers={},
            outcome=outcome,
            status=extra.pop("status", "submitted"),
            # Sent the hour it ended, unless a test says when it reached the server.
            received_at=extra.pop("received_at", started + timedelta(hours=1)),
            **extra,
        )
    )
    return ident


def add_conflict(world, squadron: int, kind: str, created: datetime, resolved: datetime | None):
    db.session.add(
        Conflict(
            entity="inspection",
            record_id=uuid.uuid4(),
            squadron_id=world.squadrons[squadron].id,
            field="findings",
            kind=kind,
            kept="server",
            created_at=created,
            status="resolved" if resolved else "open",
            resolved_at=resolved,
        )
    )


def add_order(
    world, issued: datetime, deadline: datetime, status: str, answered=None
) -> SupervisionOrder:
    """An order as the application stores it: its steps in its history (the report counts
    answers from there)."""
    supervisor, leader = (str(world.users[name].id) for name in ("supervisor", "leader1"))
    steps = [{"at": issued.isoformat(), "by": supervisor, "action": "issue", "text": "督办"}]
    if answered:
        answer = {"at": answered.isoformat(), "by": leader, "action": "answer", "text": "已处理"}
        steps.append(answer)
    order = SupervisionOrder(
        squadron_id=world.squadrons[0].id,
        issued_by_id=world.users["supervisor"].id,
        target_id=world.targets["shop1"].id,
        text="督办",
        deadline=deadline,
        status=status,
        issued_at=issued,
        answered_at=answered,
        response="已处理" if answered else None,
        history=steps,
    )
    db.session.add(order)
    return order


@pytest.fixture
def october(app, world):
    """A known October 2026 (Shanghai time) for squadron 1, and a little for squadron 2."""
    with app.app_context():
        # Inspections: on both sides of each month edge (Shanghai is UTC+8).
        add_inspection(world, "shop1", utc(2026, 9, 30, 16, 30), "scheduled", "compliant")  # Oct 1
        # Ordered at 23:59 on 31 October, due that day, and on the server before midnight: in
        # force when October ended, so overdue in October (from midnight on).
        add_inspection(
            world, "shop1", utc(2026, 10, 31, 15, 59), "random", "rectification_ordered",
            rectification_deadline=date(2026, 10, 31), received_at=utc(2026, 10, 31, 15, 59, 30),
        )  # fmt: skip
        add_inspection(world, "shop1", utc(2026, 10, 31, 16, 0), "complaint", "case_opened")  # Nov
        add_inspection(world, "shop1", utc(2026, 9, 30, 15, 59), "patrol", "compliant")  # Sep 30
        ordered = add_inspection(
            world, "site1", utc(2026, 10, 10, 2), "complaint", "rectification_ordered",
            rectification_deadline=date(2026, 10, 20),
        )  # fmt: skip
        add_inspection(
            world, "site1", utc(2026, 10, 19, 2), "task", "compliant", follow_up_of=ordered
        )
        add_inspection(world, "shop1", utc(2026, 10, 12), "patrol", None, status="draft")
        add_inspection(
            world, "shop1", utc(2026, 9, 20), "patrol", "rectification_ordered",
            rectification_deadline=date(2026, 10, 5),
        )  # fmt: skip
        add_inspection(
            world, "shop1", utc(2026, 10, 25), "patrol", "rectification_ordered",
            rectification_deadline=date(2026, 11, 30),
        )  # fmt: skip
        add_inspection(world, "shop2", utc(2026, 10, 15), "patrol", "penalty_waived")

        # Cases: one opened, one closed in October, one opened on 1 November Shanghai time.
        for opened, closed in [
            (utc(2026, 10, 3), None),
            (utc(2026, 9, 25), utc(2026, 10, 8)),
            (utc(2026, 10, 31, 17), None),
        ]:
            db.session.add(
                Case(
                    number=f"沪宝城执罚字[{uuid.uuid4().hex[:8]}]",
                    target_id=world.targets["shop1"].id,
                    squadron_id=world.squadrons[0].id,
                    opened_at=opened,
                    closed_at=closed,
                )
            )

        # Risk: levels now, and the month's level changes.
        for target, level in [("shop1", "high"), ("site1", "medium"), ("shop2", "low")]:
            db.session.execute(
                sa.update(TargetRisk.__table__)
                .where(TargetRisk.target_id == world.targets[target].id)
                .values(level=level)
            )
        for at, before, after in [
            (utc(2026, 10, 2), None, "medium"),
            (utc(2026, 10, 15), "medium", "high"),
            (utc(2026, 10, 31, 15, 59), "high", "elevated"),
            (utc(2026, 10, 31, 16, 0), "elevated", "medium"),  # 1 November in Shanghai
        ]:
            db.session.add(
                RiskLevelChange(
                    target_id=world.targets["shop1"].id,
                    squadron_id=world.squadrons[0].id,
                    at=at,
                    from_level=before,
                    to_level=after,
                    score=50,
                    reason="test",
                )
            )

        # Sync conflicts.
        add_conflict(world, 0, "field", utc(2026, 10, 5), None)
        add_conflict(world, 0, "amendment", utc(2026, 10, 6), utc(2026, 10, 7))
        add_conflict(world, 0, "delete", utc(2026, 9, 28), utc(2026, 10, 2))
        add_conflict(world, 1, "field", utc(2026, 11, 2), None)

        # Supervision orders.
        far = datetime.now(UTC) + timedelta(days=30)
        add_order(world, utc(2026, 10, 3), utc(2026, 10, 10), "open")
        add_order(world, utc(2026, 10, 4), utc(2026, 10, 9), "answered", utc(2026, 10, 6))
        add_order(world, utc(2026, 9, 1), utc(2026, 9, 9), "closed", utc(2026, 10, 2))
        add_order(world, utc(2026, 11, 2), far, "open")
        db.session.commit()


EXPECTED_SQUADRON_1 = {
    "inspections": {
        "total": 5,
        "by_origin": {"scheduled": 1, "random": 1, "complaint": 1, "patrol": 1, "task": 1},
        "by_outcome": {
            "compliant": 2,
            "corrected_on_site": 0,
            "rectification_ordered": 3,
            "case_opened": 0,
            "penalty_waived": 0,
        },
    },
    "cases": {"opened": 1, "closed": 1},
    "rectifications": {"ordered": 3, "due": 3, "overdue": 2},
    "risk": {
        "levels_now": {"low": 0, "medium": 1, "elevated": 0, "high": 1},
        "level_changes": {"upgrades": 1, "downgrades": 1, "first_levels": 1},
    },
    "conflicts": {
        "opened": 2,
        "resolved": 2,
        "opened_by_kind": {"field": 1, "amendment": 1, "delete": 0},
    },
    "supervision_orders": {"issued": 2, "answered": 2, "open_now": 2, "overdue_now": 1},
}

EXPECTED_SQUADRON_2 = {
    "inspections": {
        "total": 1,
        "by_origin": {"scheduled": 0, "random": 0, "complaint": 0, "patrol": 1, "task": 0},
        "by_outcome": {
            "compliant": 0,
            "corrected_on_site": 0,
            "rectification_ordered": 0,
            "case_opened": 0,
            "penalty_waived": 1,
        },
    },
    "cases": {"opened": 0, "closed": 0},
    "rectifications": {"ordered": 0, "due": 0, "overdue": 0},
    "risk": {
        "levels_now": {"low": 1, "medium": 0, "elevated": 0, "high": 0},
        "level_changes": {"upgrades": 0, "downgrades": 0, "first_levels": 0},
    },
    "conflicts": {
        "opened": 0,
        "resolved": 0,
        "opened_by_kind": {"field": 0, "amendment": 0, "delete": 0},
    },
    "supervision_orders": {"issued": 0, "answered": 0, "open_now": 0, "overdue_now": 0},
}


def sections(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("squadron_id", "squadron_name")}


def counted(row: dict) -> dict:
    """The sections counted from the records here (flags are the checks', tested apart)."""
    return {k: v for k, v in sections(row).items() if k != "flags"}


def test_a_leader_reads_the_squadrons_october_figures(app, login, world, october):
    body = login("leader1").get(f"{REPORT}?month=2026-10").get_json()
    assert body["month"] == "2026-10" and body["timezone"] == "Asia/Shanghai"
    assert body["start"] == "2026-10-01T00:00:00+08:00"
    assert body["end"] == "2026-11-01T00:00:00+08:00"
    # The report carries the audit chain's head: the hash of the log's last entry then.
    [last] = audit_entries(app, seq=body["audit_head"]["seq"])
    assert body["audit_head"]["hash"] == last.hash and last.action == "auth.login"
    [squadron] = body["squadrons"]
    assert (squadron["squadron_id"], squadron["squadron_name"]) == (
        world.squadrons[0].id,
        "吴淞中队",
    )
    assert counted(squadron) == EXPECTED_SQUADRON_1


def test_supervisors_see_every_squadron_and_the_district_total(login, world, october):
    body = login("supervisor").get(f"{REPORT}?month=2026-10").get_json()
    rows = {r["squadron_id"]: counted(r) for r in body["squadrons"]}
    assert rows == {
        world.squadrons[0].id: EXPECTED_SQUADRON_1,
        world.squadrons[1].id: EXPECTED_SQUADRON_2,
    }
    assert body["total"]["inspections"]["total"] == 6
    assert body["total"]["risk"]["levels_now"] == {"low": 1, "medium": 1, "elevated": 0, "high": 1}
    one = login("admin").get(f"{REPORT}?month=2026-10&squadron_id={world.squadrons[1].id}")
    assert [counted(r) for r in one.get_json()["squadrons"]] == [EXPECTED_SQUADRON_2]


def test_flags_raised_are_the_months_case_file_checks_counted(app, login, world, october):
    body = login("supervisor").get(f"{REPORT}?month=2026-10").get_json()
    rows = {r["squadron_id"]: r["flags"] for r in body["squadrons"]}
    with app.app_context():
        month = db.session.execute(
            sa.select(Inspection.id, Inspection.squadron_id).where(
                Inspection.status == "submitted",
                Inspection.started_at >= utc(2026, 9, 30, 16),
                Inspection.started_at < utc(2026, 10, 31, 16),
            )
        ).all()
        raised = check_inspections(
            [m.id for m in month], CheckSettings.from_config(app.config), utc(2026, 10, 31, 16)
        )
    assert month and raised
    for squadron in world.squadrons:
        mine = [raised[m.id] for m in month if m.squadron_id == squadron.id]
        tally = Counter(code.value for flags in mine for code in {f.flag for f in flags})
        assert rows[squadron.id] == {
            "inspections_flagged": sum(1 for flags in mine if flags),
            "by_flag": {code.value: tally[code.value] for code in FlagCode},
        }
    # Known by hand: squadron 2's one inspection was made by 吴淞's shop, 7 km from its own.
    assert rows[world.squadrons[1].id]["by_flag"]["location_far_from_target"] == 1
    total = body["total"]["flags"]
    assert total["inspections_flagged"] == sum(r["inspections_flagged"] for r in rows.values())


def test_the_csv_has_the_same_figures_as_the_json(login, world, october):
    supervisor = login("supervisor")
    as_json = supervisor.get(f"{REPORT}?month=2026-10").get_json()
    response = supervisor.get(f"{REPORT}?month=2026-10&format=csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "monthly-report-2026-10.csv" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert [r["squadron_id"] for r in rows] == [
        str(world.squadrons[0].id),
        str(world.squadrons[1].id),
        "total",
    ]
    assert rows[0]["squadron_name"] == "吴淞中队"
    for row, source in zip(rows, [*as_json["squadrons"], as_json["total"]], strict=True):
        expected = flatten("", sections(source))
        assert {k: int(v) for k, v in row.items() if k in expected} == expected
        assert set(row) - set(expected) == {
            "month",
            "squadron_id",
            "squadron_name",
            "generated_at",
            "audit_head.seq",
            "audit_head.hash",
        }
    assert rows[0]["rectifications.overdue"] == "2"


def set_levels(app, world, levels: dict) -> None:
    with app.app_context():
        for key, level in levels.items():
            db.session.execute(
                sa.update(TargetRisk.__table__)
                .where(TargetRisk.target_id == world.targets[key].id)
                .values(level=level)
            )
        db.session.commit()


def test_levels_now_leave_out_closed_targets_as_the_risk_summary_does(app, login, world):
    """A leader closes a shop that shut down: the risk summary on screen no longer counts it,
    and neither does the monthly report filed from the same squadron (``risk.levels_now``)."""
    set_levels(app, world, {"shop1": "high", "site1": "medium"})
    leader = login("leader1")
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    closed = leader.patch(path, json={"active": False}, headers={"If-Match": etag_of(leader, path)})
    assert closed.status_code == 200, closed.get_json()
    summary = leader.get("/api/v1/risk/summary").get_json()
    by_level = {entry["level"]: entry["count"] for entry in summary["levels"]}
    assert by_level == {"low": 0, "medium": 1, "elevated": 0, "high": 0}
    [row] = leader.get(REPORT).get_json()["squadrons"]
    assert row["risk"]["levels_now"] == by_level


def test_the_filed_csv_carries_when_it_was_made_and_the_audit_head(login, world):
    """Every filed report anchors the audit log (docs/audit.md): the CSV a unit files by the
    25th carries, as the JSON does, when it was made and the audit head (seq and hash), on
    every row, so the sheet stays one table."""
    supervisor = login("supervisor")
    with time_machine.travel(utc(2026, 11, 3, 2), tick=False):
        as_json = supervisor.get(f"{REPORT}?month=2026-10").get_json()
        response = supervisor.get(f"{REPORT}?month=2026-10&format=csv")
    head = as_json["audit_head"]
    rows = list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert len(rows) == 3
    for row in rows:
        assert row["generated_at"] == as_json["generated_at"] == "2026-11-03T02:00:00+00:00"
        assert (int(row["audit_head.seq"]), row["audit_head.hash"]) == (head["seq"], head["hash"])


def test_a_name_that_would_be_a_formula_is_text_in_the_csv(login, world):
    """A squadron named like a spreadsheet formula (=, +, -, @) would run as one when the
    filed CSV is opened in Excel. The CSV starts such a cell with a single quote, which makes
    it text; the JSON keeps the name as it is."""
    admin = login("admin")
    names = {0: '=HYPERLINK("http://example.com/x","吴淞")', 1: "-2+3"}
    for index, name in names.items():
        path = f"/api/v1/squadrons/{world.squadrons[index].id}"
        renamed = admin.patch(path, json={"name": name}, headers={"If-Match": etag_of(admin, path)})
        assert renamed.status_code == 200, renamed.get_json()
    as_json = login("supervisor").get(f"{REPORT}?month=2026-10").get_json()
    assert [r["squadron_name"] for r in as_json["squadrons"]] == list(names.values())
    text = login("supervisor").get(f"{REPORT}?month=2026-10&format=csv").get_data()
    rows = list(csv.DictReader(io.StringIO(text.decode("utf-8-sig"))))
    assert [r["squadron_name"] for r in rows] == [
        '\'=HYPERLINK("http://example.com/x","吴淞")',
        "'-2+3",
        "",
    ]


def test_only_cells_that_start_a_formula_are_quoted():
    for formula in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"):
        assert spreadsheet_cell(formula) == "'" + formula
    for plain in ("吴淞中队", "a=b", "2026-10", "", 0, 12, None):
        assert spreadsheet_cell(plain) == plain


def october_overdue(login, world, made: datetime | None = None) -> tuple[int, int]:
    """Squadron 1's overdue rectifications in October's report made at ``made``, as the
    rectification figures and as the ``rectification_overdue`` flags count them: one report
    gives one answer. Made on 5 December unless ``made`` says when."""
    with time_machine.travel(made or utc(2026, 12, 5, 2)):
        body = login("supervisor").get(f"{REPORT}?month=2026-10").get_json()
    row = {r["squadron_id"]: r for r in body["squadrons"]}[world.squadrons[0].id]
    return row["rectifications"]["overdue"], row["flags"]["by_flag"]["rectification_overdue"]


def october_order(world, **extra) -> uuid.UUID:
    """An order inspected and submitted on 5 October, due 20 October (``extra``: other
    columns, or other submission times)."""
    sent = utc(2026, 10, 5, 3)
    extra = {"submitted_at": sent, "first_submitted_at": sent} | extra
    return add_inspection(
        world, "shop1", utc(2026, 10, 5, 2), "patrol", "rectification_ordered",
        rectification_deadline=date(2026, 10, 20), received_at=sent, **extra,
    )  # fmt: skip


def test_a_past_months_overdue_rectifications_stay_what_the_month_ended_with(app, login, world):
    """October: an inspection ordered rectification by 20 October and nobody went back by the
    end of the month, so October's report counts it overdue. The follow-up (复查) is done on
    10 November; October's report made again in December still counts it: the filed report
    and the report made again agree."""
    with app.app_context():
        ordered = add_inspection(
            world, "shop1", utc(2026, 10, 5, 2), "patrol", "rectification_ordered",
            rectification_deadline=date(2026, 10, 20), received_at=utc(2026, 10, 5, 3),
        )  # fmt: skip
        db.session.commit()
    assert october_overdue(login, world, made=utc(2026, 11, 1, 2)) == (1, 1)
    with app.app_context():
        add_inspection(
            world, "shop1", utc(2026, 11, 10, 2), "patrol", "compliant",
            follow_up_of=ordered, received_at=utc(2026, 11, 10, 3),
        )  # fmt: skip
        db.session.commit()
    assert october_overdue(login, world) == (1, 1)


def test_only_a_follow_up_submitted_by_the_months_end_and_not_returned_settles_it(
    app, login, world
):
    """Two October orders past their deadline. One's follow-up (复查) reached the server in
    October as a draft and was submitted on 10 November; the other's was submitted in October
    and the leader returned it. Neither order was settled when October ended, and the overdue
    figure and the ``rectification_overdue`` flag both count the two; a third order whose
    follow-up was submitted in October is settled."""
    with app.app_context():

        def ordered() -> uuid.UUID:
            return add_inspection(
                world, "shop1", utc(2026, 10, 5, 2), "patrol", "rectification_ordered",
                rectification_deadline=date(2026, 10, 20),
            )  # fmt: skip

        def follow_up(of: uuid.UUID, submitted: datetime, **extra) -> None:
            add_inspection(
                world, "shop1", utc(2026, 10, 25, 2), "patrol", "compliant", follow_up_of=of,
                received_at=utc(2026, 10, 25, 3), submitted_at=submitted,
                first_submitted_at=submitted, **extra,
            )  # fmt: skip

        follow_up(ordered(), utc(2026, 11, 10, 3))
        follow_up(ordered(), utc(2026, 10, 25, 3), review_status="returned")
        follow_up(ordered(), utc(2026, 10, 25, 3))
        db.session.commit()
    assert october_overdue(login, world) == (2, 2)


def test_an_order_returned_after_the_month_stays_overdue_in_that_months_report(app, login, world):
    """Ordered on 5 October, due 20 October, no follow-up: overdue when October ended. On 10
    November the leader returns the order (to fix its wording). October's figures are "as at
    the month's end": made again in December, the report still counts it."""
    with app.app_context():
        october_order(
            world,
            review_status="returned",
            review_comment="整改期限写错",
            reviewed_at=utc(2026, 11, 10, 3),
            reviewed_by_id=world.users["leader1"].id,
        )
        db.session.commit()
    assert october_overdue(login, world) == (1, 1)


def test_a_follow_up_returned_after_the_month_still_settled_the_order_that_month(app, login, world):
    """The follow-up (复查) was submitted on 25 October, so the order was settled when October
    ended; the leader returned the follow-up on 10 November. October's report made again in
    December counts nothing overdue."""
    with app.app_context():
        ordered = october_order(world)
        add_inspection(
            world, "shop1", utc(2026, 10, 25, 2), "patrol", "compliant", follow_up_of=ordered,
            received_at=utc(2026, 10, 25, 3), submitted_at=utc(2026, 10, 25, 3),
            first_submitted_at=utc(2026, 10, 25, 3), review_status="returned",
            review_comment="请补拍照片", reviewed_at=utc(2026, 11, 10, 3),
            reviewed_by_id=world.users["leader1"].id,
        )  # fmt: skip
        db.session.commit()
    assert october_overdue(login, world) == (0, 0)


def test_an_order_still_a_draft_when_the_month_ended_was_overdue_nowhere_that_month(
    app, login, world
):
    """Ordered on 5 October (deadline 20 October) but kept as a draft on the pad until it was
    first submitted on 10 November: "a draft or returned order is overdue nowhere"
    (docs/review.md), so October, which ended with it a draft, counts nothing overdue, also
    in the report made again in December."""
    with app.app_context():
        october_order(
            world, submitted_at=utc(2026, 11, 10, 3), first_submitted_at=utc(2026, 11, 10, 3)
        )
        db.session.commit()
    assert october_overdue(login, world) == (0, 0)


def test_a_past_months_overdue_orders_follow_each_records_review_history(app, login, world):
    """Three orders pushed from the pad on 5 October, due 20 October, each returned and
    resubmitted. October's report made again in December judges each order, and each
    follow-up, by where its review stood when October ended, as its versions say (its columns
    now tell only the latest round):
    - returned on 22 October, resubmitted and approved in November: back with the officer when
      October ended, so not overdue that month (though it is open and overdue now);
    - returned and resubmitted in October, returned again on 10 November: in force when October
      ended, so overdue;
    - its follow-up submitted on 25 October, returned on 27 October and resubmitted on
      2 November: the order was unsettled when October ended, so overdue (settled now).
    """

    def at(moment: datetime, username: str):
        """``username``'s client, signed in at ``moment`` (the clock stays there)."""
        clock.move_to(moment)
        return login(username)

    def push(moment: datetime, **fields) -> str:
        device = FakeDevice(at(moment, "officer1"))
        started = moment - timedelta(hours=1)
        return push_inspection(
            world,
            device,
            started_at=started.isoformat(),
            ended_at=(started + timedelta(minutes=20)).isoformat(),
            **fields,
        )

    def order(moment: datetime) -> str:
        return push(
            moment,
            answers=FAILED_S03,
            outcome="rectification_ordered",
            rectification_deadline="2026-10-20",
        )

    def returned(moment: datetime, inspection_id: str) -> None:
        review_ok(at(moment, "leader1"), inspection_id, "return", "请修改")

    def resubmitted(moment: datetime, inspection_id: str) -> None:
        device = FakeDevice(at(moment, "officer1"))
        version = device.api.get(inspection_path(inspection_id)).get_json()["version"]
        change = device.change(
            "inspection", inspection_id, {"status": "submitted"}, base_version=version
        )
        [result] = device.push_ok(change)
        assert result["status"] == "applied", result

    with time_machine.travel(utc(2026, 10, 5, 3), tick=False) as clock:
        back_with_the_officer = order(utc(2026, 10, 5, 3))
        in_force = order(utc(2026, 10, 5, 3))
        followed_up = order(utc(2026, 10, 5, 3))
        returned(utc(2026, 10, 12, 3), in_force)
        resubmitted(utc(2026, 10, 15, 3), in_force)
        returned(utc(2026, 10, 22, 3), back_with_the_officer)
        follow_up = push(utc(2026, 10, 25, 3), follow_up_of=followed_up)
        returned(utc(2026, 10, 27, 3), follow_up)
        resubmitted(utc(2026, 11, 2, 3), follow_up)
        resubmitted(utc(2026, 11, 3, 3), back_with_the_officer)
        review_ok(at(utc(2026, 11, 4, 3), "leader1"), back_with_the_officer, "approve")
        returned(utc(2026, 11, 10, 3), in_force)

    assert october_overdue(login, world) == (2, 2)
    with app.app_context():
        settings = CheckSettings.from_config(app.config)
        orders = [uuid.UUID(i) for i in (back_with_the_officer, in_force, followed_up)]
        october_end = utc(2026, 10, 31, 16)  # midnight in Shanghai
        flagged = {
            str(order_id)
            for order_id, raised in check_inspections(orders, settings, october_end).items()
            if FlagCode.rectification_overdue in {flag.flag for flag in raised}
        }
    assert flagged == {in_force, followed_up}
    with time_machine.travel(utc(2026, 12, 5, 2)):
        listed = login("leader1").get("/api/v1/rectifications?overdue=true").get_json()
    assert [item["inspection_id"] for item in listed["items"]] == [back_with_the_officer]


def test_a_month_with_nothing_is_all_zeros(login, world, october):
    body = login("leader2").get(f"{REPORT}?month=2025-02").get_json()
    figures = flatten("", sections(body["squadrons"][0]))
    # Only "now" figures (levels and open orders) can be non-zero in an empty month.
    assert {k: v for k, v in figures.items() if "now" not in k} == dict.fromkeys(
        [k for k in figures if "now" not in k], 0
    )


def test_without_a_month_the_current_shanghai_month_is_reported(login, world):
    # 16:30 UTC on 30 November is already 1 December in Shanghai.
    with time_machine.travel(utc(2026, 11, 30, 16, 30)):
        body = login("leader1").get(REPORT).get_json()
    assert body["month"] == "2026-12"


def test_who_reads_which_report(login, world):
    assert_error(login("officer1").get(REPORT), 403, "forbidden")
    other = f"{REPORT}?squadron_id={world.squadrons[1].id}"
    assert_error(login("leader1").get(other), 404, "not_found")  # out of scope: not revealed
    assert login("leader2").get(other).status_code == 200
    assert_error(login("supervisor").get(f"{REPORT}?squadron_id={NO_SUCH_ID}"), 404, "not_found")


ISO_OFFSET = re.compile(r"T\d\d:\d\d:\d\d([+-]\d\d:\d\d)$")


@pytest.mark.parametrize(
    "month, start, end",
    [
        ("1970-01", "1970-01-01T00:00:00+08:00", "1970-02-01T00:00:00+08:00"),
        # Shanghai kept summer time from 1986 to 1991: 12 April to 13 September in 1987.
        ("1987-05", "1987-05-01T00:00:00+09:00", "1987-06-01T00:00:00+09:00"),
        ("2199-12", "2199-12-01T00:00:00+08:00", "2200-01-01T00:00:00+08:00"),
    ],
)
def test_a_months_start_and_end_are_shanghai_times_with_an_iso_offset(
    login, world, month, start, end
):
    body = login("supervisor").get(f"{REPORT}?month={month}").get_json()
    assert (body["start"], body["end"]) == (start, end)
    assert ISO_OFFSET.search(body["start"]) and ISO_OFFSET.search(body["end"])


def order_figures(body: dict, squadron_id: int) -> dict:
    return {r["squadron_id"]: r for r in body["squadrons"]}[squadron_id]["supervision_orders"]


def orders_answered(body: dict, world) -> int:
    return order_figures(body, world.squadrons[0].id)["answered"]


def order_answered_then_reopened(supervisor, leader, world, reopen_until: str) -> tuple[str, dict]:
    """An order about shop1 issued to 吴淞 on 10 October, answered on 15 October and reopened
    on 20 October (with the deadline ``reopen_until``). Returns the order's path and
    October's report as it read on the day of the answer."""
    body = {
        "squadron_id": world.squadrons[0].id,
        "target_id": str(world.targets["shop1"].id),
        "text": "该商户油烟问题群众反映强烈, 请于期限内查处并回复",
        "deadline": "2026-10-20T17:00:00+08:00",
    }
    with time_machine.travel(datetime(2026, 10, 10, 2, tzinfo=UTC), tick=False):
        issued = supervisor.post("/api/v1/supervision/orders", json=body)
        assert issued.status_code == 201, issued.get_json()
    path = f"/api/v1/supervision/orders/{issued.get_json()['id']}"
    with time_machine.travel(datetime(2026, 10, 15, 2, tzinfo=UTC), tick=False):
        assert leader.post(f"{path}/answer", json={"response": "已处理"}).status_code == 200
        answered = supervisor.get(f"{REPORT}?month=2026-10").get_json()
    with time_machine.travel(datetime(2026, 10, 20, 2, tzinfo=UTC), tick=False):
        reopened = supervisor.post(
            f"{path}/reopen", json={"reason": "仍在直排", "deadline": reopen_until}
        )
        assert reopened.status_code == 200, reopened.get_json()
    return path, answered


def test_an_answer_in_october_still_counts_in_octobers_report_after_a_reopen(login, world):
    """October's report counts the orders answered in October. The supervisor reopens one in
    October and the leader answers again on 3 November: October's report made again in
    December still counts October's answer (the figure a unit filed does not change), and
    November's counts the second."""
    supervisor, leader = login("supervisor"), login("leader1")
    path, filed = order_answered_then_reopened(
        supervisor, leader, world, "2026-11-05T17:00:00+08:00"
    )
    with time_machine.travel(datetime(2026, 11, 3, 2, tzinfo=UTC), tick=False):
        assert leader.post(f"{path}/answer", json={"response": "已再次查处"}).status_code == 200
    with time_machine.travel(datetime(2026, 12, 5, 2, tzinfo=UTC), tick=False):
        october = supervisor.get(f"{REPORT}?month=2026-10").get_json()
        november = supervisor.get(f"{REPORT}?month=2026-11").get_json()
    assert orders_answered(filed, world) == 1
    assert orders_answered(october, world) == orders_answered(filed, world)
    assert orders_answered(november, world) == 1


def test_an_order_moved_with_its_target_leaves_past_months_figures_where_they_were(login, world):
    """An order about 老王面馆 is issued to 吴淞 on 10 October, answered by 吴淞's leader on
    15 October and reopened on 20 October. On 10 November the shop moves to 张庙 and the open
    order follows it. October's report made again in December still says what October ended
    with: 吴淞 was issued one order and answered it; 张庙 was issued none and answered none."""
    supervisor, leader, admin = login("supervisor"), login("leader1"), login("admin")
    wusong, zhangmiao = world.squadrons[0].id, world.squadrons[1].id
    path, _ = order_answered_then_reopened(supervisor, leader, world, "2026-11-30T17:00:00+08:00")
    with time_machine.travel(datetime(2026, 11, 1, 2, tzinfo=UTC), tick=False):
        filed = supervisor.get(f"{REPORT}?month=2026-10").get_json()
    assert (order_figures(filed, wusong)["issued"], order_figures(filed, wusong)["answered"]) == (
        1,
        1,
    )
    with time_machine.travel(datetime(2026, 11, 10, 2, tzinfo=UTC), tick=False):
        move_target(admin, world.targets["shop1"].id, zhangmiao)
    assert supervisor.get(path).get_json()["squadron_id"] == zhangmiao
    with time_machine.travel(datetime(2026, 12, 5, 2, tzinfo=UTC), tick=False):
        again = supervisor.get(f"{REPORT}?month=2026-10").get_json()
        november = supervisor.get(f"{REPORT}?month=2026-11").get_json()
    figures = (order_figures(again, wusong), order_figures(again, zhangmiao))
    assert (figures[0]["issued"], figures[0]["answered"]) == (1, 1), figures
    assert (figures[1]["issued"], figures[1]["answered"]) == (0, 0), figures
    # Open now, the order is 张庙's to answer, in every month's report.
    assert (figures[0]["open_now"], figures[1]["open_now"]) == (0, 1), figures
    assert order_figures(november, zhangmiao)["issued"] == 0


def test_a_case_moved_with_its_target_stays_opened_by_the_squadron_that_opened_it(login, world):
    """吴淞 opens a case on 老王面馆 in October; in November the shop moves to 张庙 and the
    open case goes with it. October's report made again in December still counts the case as
    opened by 吴淞, the squadron whose inspection opened it."""
    wusong, zhangmiao = world.squadrons[0].id, world.squadrons[1].id
    with time_machine.travel(datetime(2026, 10, 10, 2, tzinfo=UTC), tick=False):
        device = FakeDevice(login("officer1"))
        opened = push_inspection(world, device, answers=FAILED_S03, outcome="case_opened")
        review_ok(login("leader1"), opened, "approve")
    with time_machine.travel(datetime(2026, 11, 10, 2, tzinfo=UTC), tick=False):
        move_target(login("admin"), world.targets["shop1"].id, zhangmiao)
    with time_machine.travel(datetime(2026, 12, 5, 2, tzinfo=UTC), tick=False):
        october = login("supervisor").get(f"{REPORT}?month=2026-10").get_json()
    rows = {r["squadron_id"]: r["cases"]["opened"] for r in october["squadrons"]}
    assert (rows[wusong], rows[zhangmiao]) == (1, 0), rows


def test_answers_count_in_the_shanghai_month_they_were_given_once_per_order(app, login, world):
    """An answer at 23:59 on 31 October Shanghai time is October's, one at 00:00 on
    1 November is November's (whatever offset the step was written with); an order answered
    twice in October counts once."""
    with app.app_context():
        for answers in (
            [utc(2026, 10, 31, 15, 59)],
            ["2026-11-01T00:00:00+08:00"],
            [utc(2026, 10, 5), utc(2026, 10, 9)],
        ):
            order = add_order(world, utc(2026, 10, 1), utc(2026, 10, 30), "answered")
            leader = str(world.users["leader1"].id)
            order.history = [order.history[0]] + [
                {
                    "at": at if isinstance(at, str) else at.isoformat(),
                    "by": leader,
                    "action": "answer",
                    "text": "已处理",
                }
                for at in answers
            ]
            order.answered_at = utc(2026, 10, 31, 16)
        db.session.commit()
    supervisor = login("supervisor")
    october = supervisor.get(f"{REPORT}?month=2026-10").get_json()
    november = supervisor.get(f"{REPORT}?month=2026-11").get_json()
    assert (orders_answered(october, world), orders_answered(november, world)) == (2, 1)


@pytest.mark.parametrize("month", ["1969-12", "1900-01", "2200-01"])
def test_months_outside_1970_to_2199_are_refused_with_the_range(login, world, month):
    """Before 1901 Shanghai's clocks kept local mean time, +08:05:43: no ISO 8601 offset."""
    response = login("supervisor").get(f"{REPORT}?month={month}")
    body = assert_error(response, 422, "validation_failed")
    assert body["errors"]["query"]["month"] == [
        "a month as YYYY-MM from 1970-01 to 2199-12, e.g. 2026-11"
    ]


@pytest.mark.parametrize(
    "query, field",
    [
        ("month=2026-13", "month"),
        ("month=2026-1", "month"),
        ("month=October", "month"),
        ("format=xml", "format"),
        ("squadron_id=abc", "squadron_id"),
        ("squadron_id=0", "squadron_id"),
    ],
)
def test_bad_report_queries_are_422_with_the_field(login, world, query, field):
    response = login("supervisor").get(f"{REPORT}?{query}")
    assert field in assert_error(response, 422, "validation_failed")["errors"]["query"]
