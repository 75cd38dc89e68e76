"""12345 complaints as a squadron leader handles them: recorded, listed, decided, and felt in the
target's risk at once."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from fieldapp.actor import Actor
from fieldapp.db import db
from fieldapp.localtime import local_date
from fieldapp.risk import operations as risk_ops
from tests.conftest import (
    RACE_WAIT,
    add_shop,
    assert_error,
    at_once,
    audit_entries,
    etag_of,
    sign_in,
    status_of,
    until_there_or_waiting,
)
from tests.review_helpers import (
    FAILED_S03,
    complaint_task,
    push_inspection,
    receive_complaint,
    review,
)
from tests.sync_helpers import FakeDevice
from tests.test_risk import approved_and_assessed, approved_inspection, patch_target, risk_of


def complaint_body(world, target="shop1", **overrides) -> dict:
    return {
        "target_id": str(world.targets[target].id),
        "category": "占道经营",
        "text": "面馆门前堆放桌椅，影响行人通行",
        "reference": "2026112100123",
        **overrides,
    }


def complaint_factor(api, target_id) -> list:
    risk = api.get(f"/api/v1/targets/{target_id}/risk").get_json()
    return [f for f in risk["factors"] if f["factor"] == "complaints"]


def test_a_leader_records_a_complaint_and_it_waits_in_the_open_list(app, login, world):
    leader = login("leader1")
    response = leader.post("/api/v1/complaints", json=complaint_body(world))
    assert response.status_code == 201, response.get_json()
    complaint = response.get_json()
    assert complaint["status"] == "open"
    assert complaint["substantiated"] is None
    assert complaint["squadron_id"] == world.squadrons[0].id
    assert complaint["source"] == "12345"
    listed = leader.get("/api/v1/complaints?status=open").get_json()["items"]
    assert [c["id"] for c in listed] == [complaint["id"]]
    assert leader.get("/api/v1/complaints?status=closed").get_json()["items"] == []
    # The target's file shows it; the audit log has it.
    target_file = leader.get(f"/api/v1/targets/{world.targets['shop1'].id}").get_json()
    assert complaint["id"] in [c["id"] for c in target_file["complaints"]]
    [entry] = audit_entries(app, action="complaint.receive")
    assert entry.record_id == complaint["id"]
    assert entry.after["text"] == complaint_body(world)["text"]


def test_open_complaints_are_listed_longest_waiting_first(login, world):
    leader = login("leader1")
    now = datetime.now(UTC)
    ids = []
    for days, reference in ((1, "A1"), (5, "A2"), (3, "A3")):
        body = complaint_body(
            world, reference=reference, received_at=(now - timedelta(days=days)).isoformat()
        )
        ids.append(leader.post("/api/v1/complaints", json=body).get_json()["id"])
    open_ids = [c["id"] for c in leader.get("/api/v1/complaints?status=open").get_json()["items"]]
    assert open_ids == [ids[1], ids[2], ids[0]]
    newest_first = [c["id"] for c in leader.get("/api/v1/complaints").get_json()["items"]]
    assert newest_first == [ids[0], ids[2], ids[1]]


def test_a_substantiated_complaint_raises_the_targets_score_at_once(app, login, world):
    leader = login("leader1")
    shop = world.targets["shop1"].id
    before = leader.get(f"/api/v1/targets/{shop}/risk").get_json()
    assert complaint_factor(leader, shop) == []
    complaint = leader.post("/api/v1/complaints", json=complaint_body(world)).get_json()
    with app.app_context():
        inspection = approved_inspection(world, "shop1", datetime.now(UTC), failed=("S02",))
        inspection_id = str(inspection.id)
        db.session.commit()
    response = leader.post(
        f"/api/v1/complaints/{complaint['id']}/decision",
        json={"substantiated": True, "note": "现场核实属实", "inspection_id": inspection_id},
    )
    assert response.status_code == 200, response.get_json()
    decided = response.get_json()
    assert (decided["status"], decided["substantiated"]) == ("closed", True)
    assert decided["inspection_id"] == inspection_id
    assert decided["decided_by_id"] == str(world.users["leader1"].id)
    [factor] = complaint_factor(leader, shop)
    assert factor["source"] == {"entity": "complaint", "id": complaint["id"]}
    assert factor["points"] > 0
    after = leader.get(f"/api/v1/targets/{shop}/risk").get_json()
    assert after["score"] > before["score"]
    [entry] = audit_entries(app, action="complaint.decide")
    assert entry.after["substantiated"] is True and entry.before["substantiated"] is None


def test_a_complaint_counts_from_the_day_it_is_found_true_not_the_day_it_was_received(login, world):
    """A 12345 ticket received 100 days ago (the check took long) is found true today: it
    counts among the complaints found true in the last 90 days (docs/risk.md), with the day of
    the decision. Before, it was judged by when it was received and added nothing."""
    leader = login("leader1")
    shop = str(world.targets["shop1"].id)
    received = datetime.now(UTC) - timedelta(days=100)
    complaint = leader.post(
        "/api/v1/complaints",
        json=complaint_body(world, text="面馆门前堆放桌椅", received_at=received.isoformat()),
    ).get_json()
    decided = leader.post(
        f"/api/v1/complaints/{complaint['id']}/decision",
        json={"substantiated": True, "note": "现场核实属实"},
    )
    assert decided.status_code == 200, decided.get_json()
    [factor] = complaint_factor(leader, shop)
    assert factor["source"] == {"entity": "complaint", "id": complaint["id"]}
    assert factor["reason"] == f"complaint found true on {local_date(datetime.now(UTC))}"


def test_a_complaint_found_true_twelve_days_ago_holds_a_downgrade(app, login, world):
    """The shop is at elevated (credit D) since day 0 with three clean inspections; a ticket
    received on day 0 is found true on day 50. On day 62 its credit becomes A (score: low),
    but a downgrade needs "no complaint found true in the last 60 days" (docs/risk.md): it was
    found true 12 days ago, so the shop stays. Before, it stepped down, the complaint judged
    by its day of receipt, 62 days back."""
    shop = str(world.targets["shop1"].id)
    start = datetime.now(UTC)
    with time_machine.travel(start):
        leader = login("leader1")
        patch_target(leader, shop, {"credit_class": "D"})
        assert risk_of(leader, shop)["level"] == "elevated"
        complaint = leader.post("/api/v1/complaints", json=complaint_body(world)).get_json()
    for days in (5, 10, 15):
        approved_and_assessed(app, world, "shop1", start + timedelta(days=days))
    with time_machine.travel(start + timedelta(days=50)):
        leader = login("leader1")
        decided = leader.post(
            f"/api/v1/complaints/{complaint['id']}/decision",
            json={"substantiated": True, "note": "属实"},
        )
        assert decided.status_code == 200, decided.get_json()
    with time_machine.travel(start + timedelta(days=62)):
        leader = login("leader1")
        patch_target(leader, shop, {"credit_class": "A"})
        risk = risk_of(leader, shop)
    assert risk["level"] == "elevated", risk["reason"]
    found_on = local_date(start + timedelta(days=50))
    assert f"complaint found true on {found_on}, within 60 days" in risk["reason"]


def test_a_correction_that_keeps_a_complaint_true_keeps_the_day_it_was_found_true(
    app, login, world
):
    """Found true on day 0, its note corrected on day 80 (still true): the complaint counts
    from day 0, and is out of the 90 days on day 95, not counted afresh from the correction.
    Found untrue first and corrected to true, it counts from the correction."""
    shop = str(world.targets["shop1"].id)
    start = datetime.now(UTC)
    bodies = [complaint_body(world, reference=ref) for ref in ("2026112100123", "2026112100124")]
    with time_machine.travel(start):
        leader = login("leader1")
        kept, turned = (leader.post("/api/v1/complaints", json=b).get_json() for b in bodies)
        for complaint, substantiated in ((kept, True), (turned, False)):
            path = f"/api/v1/complaints/{complaint['id']}/decision"
            body = {"substantiated": substantiated, "note": "核实"}
            assert leader.post(path, json=body).status_code == 200
    with time_machine.travel(start + timedelta(days=80)):
        leader = login("leader1")
        for complaint in (kept, turned):
            path = f"/api/v1/complaints/{complaint['id']}/decision"
            body = {"substantiated": True, "note": "复核：属实，补充现场照片"}
            assert leader.post(path, json=body).status_code == 200
    with time_machine.travel(start + timedelta(days=95)):
        leader = login("leader1")
        patch_target(leader, shop, {"credit_class": "C"})  # re-assessed on day 95
        sources = [f["source"]["id"] for f in complaint_factor(leader, shop)]
    assert sources == [turned["id"]]


def test_a_corrected_decision_takes_the_points_back_and_is_audited(app, login, world):
    leader = login("leader1")
    shop = world.targets["shop1"].id
    complaint = leader.post("/api/v1/complaints", json=complaint_body(world)).get_json()
    path = f"/api/v1/complaints/{complaint['id']}/decision"
    assert leader.post(path, json={"substantiated": True, "note": "属实"}).status_code == 200
    assert len(complaint_factor(leader, shop)) == 1
    response = leader.post(path, json={"substantiated": False, "note": "复核：系误报"})
    assert response.status_code == 200
    assert complaint_factor(leader, shop) == []
    entries = audit_entries(app, action="complaint.decide")
    assert [(e.before["substantiated"], e.after["substantiated"]) for e in entries] == [
        (None, True),
        (True, False),
    ]


def test_a_corrected_decision_takes_back_the_rise_of_level_it_caused(app, login, world):
    """老王面馆 came down to low after three clean inspections in 40 days; a later one found
    S02 (moderate), still low. A complaint found true adds its points and lifts the shop to
    medium at once. The leader corrects the decision (a false report): the points go, and the
    rise with them. Low again, as before the complaint, and low since it first came down;
    before, the shop was held at medium (0 of 3 clean inspections, 0 of 30 days at the level)
    for a complaint the squadron had found untrue."""
    shop = world.targets["shop1"].id
    start = datetime.now(UTC)
    with app.app_context():
        for days in (10, 20, 30):
            approved_inspection(world, "shop1", start + timedelta(days=days))
        db.session.commit()
    with time_machine.travel(start + timedelta(days=40)):
        leader = login("leader1")
        with app.app_context():
            risk_ops.assess_targets(Actor.for_system("risk"), datetime.now(UTC))
            approved_inspection(world, "shop1", datetime.now(UTC), failed=("S02",))
            risk_ops.assess_targets(Actor.for_system("risk"), datetime.now(UTC))
            db.session.commit()
        low = leader.get(f"/api/v1/targets/{shop}/risk").get_json()
        assert low["level"] == "low", low["reason"]
    with time_machine.travel(start + timedelta(days=41)):
        leader = login("leader1")
        complaint = leader.post("/api/v1/complaints", json=complaint_body(world)).get_json()
        path = f"/api/v1/complaints/{complaint['id']}/decision"
        assert leader.post(path, json={"substantiated": True, "note": "属实"}).status_code == 200
        raised = leader.get(f"/api/v1/targets/{shop}/risk").get_json()
        assert raised["level"] == "medium", raised["reason"]
        response = leader.post(path, json={"substantiated": False, "note": "复核：系误报"})
        assert response.status_code == 200, response.get_json()
        risk = leader.get(f"/api/v1/targets/{shop}/risk").get_json()
    assert (risk["level"], risk["score"]) == ("low", low["score"]), risk["reason"]
    assert risk["level_since"] == low["level_since"]
    assert [(h["from"], h["to"]) for h in risk["history"][:2]] == [
        ("medium", "low"),
        ("low", "medium"),
    ]
    assert f"complaint {complaint['id']} corrected" in risk["history"][0]["reason"]


def test_two_decisions_at_once_both_count_in_the_targets_risk(pg_app, monkeypatch):
    """Two 12345 complaints about one shop are decided "substantiated" at the same moment (the
    leader on the office PC, the deputy on a pad): the shop's risk counts both.

    Before, each decision re-assessed the shop from facts it read before it locked the stored
    assessment, so both read a world with only their own complaint decided, and the one that
    wrote second stored a score that counted one complaint: 5 points short, until the next
    change to the shop."""
    app, world = pg_app
    leaders = [sign_in(app, "leader1", "pad-risk-1"), sign_in(app, "leader1", "pad-risk-2")]
    shop = add_shop(leaders[0], world.squadrons[0].id, "同心酒家")
    complaints = [receive_complaint(leaders[0], target_id=shop) for _ in range(2)]
    arrived = {"first": threading.Event(), "second": threading.Event()}
    gather = risk_ops.gather_facts

    def gather_when_both_read(*args, **kwargs):
        facts = gather(*args, **kwargs)
        name = threading.current_thread().name
        if name in arrived:
            arrived[name].set()
            until_there_or_waiting(arrived["second" if name == "first" else "first"])
        return facts

    monkeypatch.setattr(risk_ops, "gather_facts", gather_when_both_read)

    def decide(api, complaint_id: str):
        return lambda: api.post(
            f"/api/v1/complaints/{complaint_id}/decision",
            json={"substantiated": True, "note": "现场核实, 投诉属实"},
        )

    answers = at_once(
        ("first", decide(leaders[0], complaints[0])), ("second", decide(leaders[1], complaints[1]))
    )
    monkeypatch.undo()
    assert [status_of(a) for a in answers.values()] == [200, 200], answers
    counted = {f["source"]["id"] for f in complaint_factor(leaders[0], shop)}
    assert counted == set(complaints)


def _decide(api, complaint_id: str):
    return lambda: api.post(
        f"/api/v1/complaints/{complaint_id}/decision",
        json={"substantiated": True, "note": "现场核实, 投诉属实"},
    )


def _decision_waits_at_the_counter(monkeypatch, asking: threading.Event, other_done):
    """Make the decision (thread "decide") stop where it first asks for the change counter,
    until the other writer is done or waits on a lock. Before, the decision's view had locked
    the complaint by then, and the other writer, holding the counter, waited for it."""
    from fieldapp.complaints import operations as complaint_ops

    hold = complaint_ops.hold

    def hold_once_the_other_waits(*args, **kwargs):
        if threading.current_thread().name == "decide" and not asking.is_set():
            asking.set()
            until_there_or_waiting(other_done)
        return hold(*args, **kwargs)

    monkeypatch.setattr(complaint_ops, "hold", hold_once_the_other_waits)


def test_a_decision_and_a_move_of_the_complaint_s_target_take_turns(pg_app, monkeypatch):
    """The leader decides an open 12345 complaint about a shop while the admin moves the shop
    to another squadron, which takes its open complaints along. They take turns: the move
    answers 200, and the decision, asked then of the squadron the complaint is in now, is the
    new squadron's to make (403 for the old leader; docs/review.md). The complaint waits open
    in the new squadron.

    Before, the decision locked the complaint and then asked for the change counter, which
    the move held while it waited for the complaint: a deadlock, and one of the two answered
    503 ``database_unavailable``."""
    app, world = pg_app
    leader = sign_in(app, "leader1", "pad-dm-l")
    admin = sign_in(app, "admin", "pc-dm-a")
    shop = add_shop(leader, world.squadrons[0].id, "同福面馆")
    complaint = receive_complaint(leader, target_id=shop)
    path = f"/api/v1/targets/{shop}"
    etag = etag_of(admin, path)

    asking, moved = threading.Event(), threading.Event()
    _decision_waits_at_the_counter(monkeypatch, asking, moved)

    def move():
        asking.wait(RACE_WAIT)
        try:
            return admin.patch(
                path, json={"squadron_id": world.squadrons[1].id}, headers={"If-Match": etag}
            )
        finally:
            moved.set()

    answers = at_once(("decide", _decide(leader, complaint)), ("move", move))
    monkeypatch.undo()
    bodies = {n: a.get_json() for n, a in answers.items() if hasattr(a, "get_json")}
    assert {n: status_of(a) for n, a in answers.items()} == {"decide": 403, "move": 200}, bodies
    now = admin.get(f"/api/v1/complaints/{complaint}").get_json()
    assert (now["squadron_id"], now["substantiated"]) == (world.squadrons[1].id, None), now


def test_a_decision_and_the_approval_settling_the_complaint_take_turns(pg_app, monkeypatch):
    """A complaint went out as a task; the officers' check waits for review. The leader
    approves the check on the office PC (which settles the complaint) while an admin decides
    the same complaint by hand: both answer 200. They take turns: the approval settles the
    complaint, and the decision, which waited for it, is then a correction, and stands.

    Before, the decision locked the complaint and then asked for the change counter, which the
    approval held while it waited for the complaint: a deadlock, and one of them answered 503
    ``database_unavailable``."""
    app, world = pg_app
    leader = sign_in(app, "leader1", "pad-da-l")
    admin = sign_in(app, "admin", "pc-da-a")
    shop = add_shop(leader, world.squadrons[0].id, "同福茶楼")
    complaint = receive_complaint(leader, target_id=shop)
    task = complaint_task(leader, world, shop, complaint)
    device = FakeDevice(sign_in(app, "officer1", "pad-da-o"))
    inspection = push_inspection(
        world,
        device,
        origin="task",
        task_id=task,
        target_id=shop,
        answers=FAILED_S03,
        started_at=datetime.now(UTC).isoformat(),
        ended_at=(datetime.now(UTC) + timedelta(minutes=20)).isoformat(),
    )
    etag = etag_of(leader, f"/api/v1/inspections/{inspection}")

    asking, approved = threading.Event(), threading.Event()
    _decision_waits_at_the_counter(monkeypatch, asking, approved)

    def approve():
        asking.wait(RACE_WAIT)
        try:
            return review(leader, inspection, "approve", etag=etag)
        finally:
            approved.set()

    answers = at_once(("decide", _decide(admin, complaint)), ("approve", approve))
    monkeypatch.undo()
    bodies = {n: a.get_json() for n, a in answers.items() if hasattr(a, "get_json")}
    assert {n: status_of(a) for n, a in answers.items()} == {"decide": 200, "approve": 200}, bodies
    settled = leader.get(f"/api/v1/complaints/{complaint}").get_json()
    assert settled["decision_note"] == "现场核实, 投诉属实", settled


def test_a_complaint_without_a_registered_target_belongs_to_the_named_squadron(login, world):
    leader = login("leader2")
    body = {
        "squadron_id": world.squadrons[1].id,
        "category": "无证设摊",
        "text": "共康路地铁站口流动摊贩",
    }
    response = leader.post("/api/v1/complaints", json=body)
    assert response.status_code == 201, response.get_json()
    complaint = response.get_json()
    assert complaint["target_id"] is None
    decided = leader.post(
        f"/api/v1/complaints/{complaint['id']}/decision",
        json={"substantiated": True, "note": "已劝离"},
    )
    assert decided.status_code == 200


def test_complaints_are_scoped_to_the_squadron(login, world):
    leader1 = login("leader1")
    complaint = leader1.post("/api/v1/complaints", json=complaint_body(world)).get_json()
    path = f"/api/v1/complaints/{complaint['id']}"
    # Another squadron neither sees it (404) nor decides it (403, an out-of-scope write); its
    # officers read it but do not decide it.
    assert_error(login("leader2").get(path), 404, "not_found")
    assert login("leader2").get("/api/v1/complaints").get_json()["items"] == []
    assert_error(
        login("leader2").post(f"{path}/decision", json={"substantiated": True, "note": "x"}),
        403,
        "forbidden",
    )
    officer = login("officer1")
    assert officer.get(path).status_code == 200
    assert_error(
        officer.post(f"{path}/decision", json={"substantiated": True, "note": "x"}),
        403,
        "forbidden",
    )
    assert_error(
        officer.post("/api/v1/complaints", json=complaint_body(world, reference="B1")),
        403,
        "forbidden",
    )
    # A leader cannot file one in another squadron, named or through its target.
    assert_error(
        leader1.post(
            "/api/v1/complaints",
            json={"squadron_id": world.squadrons[1].id, "category": "噪声", "text": "夜间施工"},
        ),
        403,
        "forbidden",
    )
    body = assert_error(
        leader1.post("/api/v1/complaints", json=complaint_body(world, "shop2", reference="B2")),
        422,
        "validation_failed",
    )
    assert "target_id" in body["errors"]["json"]
    # The supervisor reads every complaint of the district.
    assert login("supervisor").get(path).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"category": ""}, "category"),
        ({"category": "x" * 41}, "category"),
        ({"text": None}, "text"),
        ({"target_id": "not-a-uuid"}, "target_id"),
        ({"target_id": str(uuid.UUID(int=7))}, "target_id"),
        ({"received_at": "2026-11-21T10:00:00"}, "received_at"),  # no offset
        ({"received_at": "2099-01-01T00:00:00+08:00"}, "received_at"),
        ({"squadron_id": "1"}, "squadron_id"),
        ({"colour": "red"}, "colour"),
        ({"reference": "y" * 41}, "reference"),
    ],
)
def test_bad_complaints_are_refused_field_by_field(login, world, overrides, field):
    body = {k: v for k, v in complaint_body(world, **overrides).items() if v is not None}
    response = login("leader1").post("/api/v1/complaints", json=body)
    errors = assert_error(response, 422, "validation_failed")["errors"]["json"]
    assert field in errors
    assert login("leader1").get("/api/v1/complaints").get_json()["items"] == []


def test_a_complaint_needs_a_target_or_a_squadron_and_they_must_agree(login, world):
    leader = login("leader1")
    body = {"category": "噪声", "text": "夜间施工噪声"}
    errors = assert_error(leader.post("/api/v1/complaints", json=body), 422, "validation_failed")
    assert "target_id" in errors["errors"]["json"]
    mismatch = complaint_body(world, "site1", squadron_id=world.squadrons[1].id)
    response = login("admin").post("/api/v1/complaints", json=mismatch)
    assert "squadron_id" in assert_error(response, 422, "validation_failed")["errors"]["json"]


def test_the_same_hotline_ticket_is_one_complaint(login, world):
    leader = login("leader1")
    first = leader.post("/api/v1/complaints", json=complaint_body(world)).get_json()
    response = leader.post("/api/v1/complaints", json=complaint_body(world))
    errors = assert_error(response, 422, "validation_failed")["errors"]["json"]
    assert first["id"] in errors["reference"][0]
    assert len(leader.get("/api/v1/complaints").get_json()["items"]) == 1
    # Another source may reuse the number.
    other = leader.post("/api/v1/complaints", json=complaint_body(world, source="citizen-app"))
    assert other.status_code == 201


def test_a_ticket_number_pasted_with_spaces_is_the_same_ticket(login, world):
    """Pasted from the hotline's spreadsheet with a trailing space, the ticket recorded before
    is still found: one citizen's call must not count twice in the shop's risk. The list's
    filter reads the number the same way."""
    leader = login("leader1")
    first = leader.post("/api/v1/complaints", json=complaint_body(world)).get_json()
    again = complaint_body(world, reference=f" {first['reference']}\t")
    errors = assert_error(leader.post("/api/v1/complaints", json=again), 422, "validation_failed")
    assert first["id"] in errors["errors"]["json"]["reference"][0]
    found = leader.get(f"/api/v1/complaints?reference={first['reference']}%20").get_json()
    assert [c["id"] for c in found["items"]] == [first["id"]]


@pytest.mark.parametrize("field", ["reference", "source", "category"])
def test_a_blank_ticket_source_or_category_is_refused(login, world, field):
    leader = login("leader1")
    response = leader.post("/api/v1/complaints", json=complaint_body(world, **{field: "   "}))
    errors = assert_error(response, 422, "validation_failed")["errors"]["json"]
    assert field in errors
    assert leader.get("/api/v1/complaints").get_json()["items"] == []


def test_a_ticket_another_squadron_recorded_is_refused_without_its_id(login, world):
    """The same hotline ticket forwarded to two squadrons is recorded once: the second is
    refused on ``reference``. The refusal names the first complaint only to a caller who may
    read it (its squadron's leader, an admin); another squadron's leader learns that the ticket
    is recorded, not the id of a complaint out of their scope."""
    first = login("leader1").post("/api/v1/complaints", json=complaint_body(world)).get_json()
    again = complaint_body(world, "shop2")
    response = login("leader2").post("/api/v1/complaints", json=again)
    [why] = assert_error(response, 422, "validation_failed")["errors"]["json"]["reference"]
    assert "already recorded" in why and first["id"] not in why
    assert first["id"] not in response.get_data(as_text=True)
    response = login("admin").post("/api/v1/complaints", json=again)
    [why] = assert_error(response, 422, "validation_failed")["errors"]["json"]["reference"]
    assert first["id"] in why


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"substantiated": "yes", "note": "x"}, "substantiated"),
        ({"substantiated": 1, "note": "x"}, "substantiated"),
        ({"note": "x"}, "substantiated"),
        ({"substantiated": True}, "note"),
        ({"substantiated": True, "note": ""}, "note"),
        (
            {"substantiated": True, "note": "x", "inspection_id": str(uuid.UUID(int=9))},
            "inspection_id",
        ),
        ({"substantiated": True, "note": "x", "verdict": "ok"}, "verdict"),
    ],
)
def test_bad_decisions_are_refused_and_leave_the_complaint_open(login, world, body, field):
    leader = login("leader1")
    complaint = leader.post("/api/v1/complaints", json=complaint_body(world)).get_json()
    path = f"/api/v1/complaints/{complaint['id']}"
    response = leader.post(f"{path}/decision", json=body)
    assert field in assert_error(response, 422, "validation_failed")["errors"]["json"]
    assert leader.get(path).get_json()["status"] == "open"


@pytest.mark.parametrize("field", ["category", "text"])
@pytest.mark.parametrize("blank", ["   ", "\n\t"])
def test_a_complaint_of_blanks_is_refused(login, world, field, blank):
    """A complaint says what the citizen complained of (``category``, ``text``): one of
    spaces alone would wait in the open list saying nothing. 422 on that field, nothing
    recorded."""
    leader = login("leader1")
    response = leader.post("/api/v1/complaints", json=complaint_body(world, **{field: blank}))
    assert field in assert_error(response, 422, "validation_failed")["errors"]["json"]
    assert leader.get("/api/v1/complaints").get_json()["items"] == []


@pytest.mark.parametrize("note", ["   ", "\n\t"])
def test_a_decision_needs_a_note_that_says_something(login, world, note):
    """The leader says why a complaint is or is not substantiated: a note of blanks is
    refused (422 on ``note``, as a blank order text or task-cancel reason is) and the
    complaint stays open, with no empty reason on file."""
    leader = login("leader1")
    complaint = leader.post("/api/v1/complaints", json=complaint_body(world)).get_json()
    path = f"/api/v1/complaints/{complaint['id']}"
    response = leader.post(f"{path}/decision", json={"substantiated": True, "note": note})
    assert "note" in assert_error(response, 422, "validation_failed")["errors"]["json"]
    assert leader.get(path).get_json()["status"] == "open"


def test_the_checking_inspection_must_be_of_the_complaints_target(app, login, world):
    leader = login("leader1")
    complaint = leader.post("/api/v1/complaints", json=complaint_body(world)).get_json()
    with app.app_context():
        other = approved_inspection(world, "site1", datetime.now(UTC))
        other_id = str(other.id)
        db.session.commit()
    response = leader.post(
        f"/api/v1/complaints/{complaint['id']}/decision",
        json={"substantiated": True, "note": "x", "inspection_id": other_id},
    )
    assert "inspection_id" in assert_error(response, 422, "validation_failed")["errors"]["json"]


def test_received_dates_filter_by_whole_shanghai_days(login, world):
    """``from``/``to`` take a date as every list does: that Shanghai day, ``to`` included; a
    complaint received at 23:30 on the 20th in Shanghai (15:30 UTC) is on the 20th."""
    leader = login("leader1")
    late = "2026-11-20T23:30:00+08:00"
    body = complaint_body(world, reference="2026112099001", received_at=late)
    created = leader.post("/api/v1/complaints", json=body)
    assert created.status_code == 201, created.get_json()

    def listed(query: str) -> list[str]:
        return [c["id"] for c in leader.get(f"/api/v1/complaints?{query}").get_json()["items"]]

    assert created.get_json()["id"] in listed("from=2026-11-20&to=2026-11-20")
    assert listed("from=2026-11-21&to=2026-11-21") == []
    assert_error(
        leader.get("/api/v1/complaints?from=2026-11-21&to=2026-11-20"), 422, "validation_failed"
    )


def test_unknown_complaints_and_bad_filters(login, world):
    leader = login("leader1")
    assert_error(leader.get(f"/api/v1/complaints/{uuid.uuid4()}"), 404, "not_found")
    for query in ("status=pending", "from=yesterday", "squadron_id=0", "substantiated=maybe"):
        response = leader.get(f"/api/v1/complaints?{query}")
        assert_error(response, 422, "validation_failed")
