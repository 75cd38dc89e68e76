"""The review workflow (审核): the state machine by state, action and role; concurrent reviews;
what approval sets off (task, case, risk); returned records on the officer's device."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm.exc import StaleDataError

from fieldapp.actor import Actor
from fieldapp.auth.models import User
from fieldapp.auth.policy import _WRITE_RULES
from fieldapp.db import db
from fieldapp.inspections import operations
from fieldapp.inspections.models import (
    ACTION_PERMISSIONS,
    TRANSITIONS,
    Inspection,
    InspectionState,
    InspectionStatus,
    ReviewAction,
    ReviewStatus,
    TransitionRefused,
)
from tests.conftest import assert_error, audit_entries, etag_of
from tests.review_helpers import (
    FAILED_S03,
    add_second_leader,
    inspection_path,
    push_inspection,
    review,
    review_ok,
)
from tests.sync_helpers import FakeDevice

ENDED = datetime(2026, 11, 20, 9, 50, tzinfo=UTC).isoformat()

# -- the table itself, on the model ----------------------------------------------------------------

ALLOWED = {
    ("draft", "submit"): "pending",
    ("returned", "submit"): "pending",
    ("pending", "approve"): "approved",
    ("pending", "return"): "returned",
    ("approved", "reopen"): "pending",
}

STATE_FIELDS = {
    "draft": (InspectionStatus.draft, ReviewStatus.pending),
    "pending": (InspectionStatus.submitted, ReviewStatus.pending),
    "approved": (InspectionStatus.submitted, ReviewStatus.approved),
    "returned": (InspectionStatus.submitted, ReviewStatus.returned),
}


def test_the_transition_table_is_exactly_the_documented_one():
    assert {(s.value, a.value): t.value for (s, a), t in TRANSITIONS.items()} == ALLOWED


def test_every_action_names_a_permission_the_policy_knows():
    assert {a.value: p for a, p in ACTION_PERMISSIONS.items()} == {
        "submit": "inspection.edit",
        "approve": "inspection.review",
        "return": "inspection.review",
        "reopen": "conflict.resolve",
    }
    assert set(ACTION_PERMISSIONS.values()) <= set(_WRITE_RULES)


@pytest.mark.parametrize("state", list(STATE_FIELDS))
@pytest.mark.parametrize("action", [a.value for a in ReviewAction])
def test_every_state_and_action_moves_or_is_refused(state, action):
    status, review_status = STATE_FIELDS[state]
    inspection = Inspection(status=status, review_status=review_status)
    reviewer, at = uuid.uuid4(), datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
    if (state, action) not in ALLOWED:
        with pytest.raises(TransitionRefused):
            inspection.transition(ReviewAction(action), by=reviewer, at=at, comment="x")
        assert (inspection.status, inspection.review_status) == (status, review_status)
        return
    new = inspection.transition(ReviewAction(action), by=reviewer, at=at, comment="x")
    assert new.value == ALLOWED[state, action] == inspection.state.value
    if new is InspectionState.pending:  # waiting for a new review: nothing of the old one stays
        assert inspection.reviewed_by_id is None and inspection.review_comment is None
    else:
        assert (inspection.reviewed_by_id, inspection.reviewed_at) == (reviewer, at)


# -- by role, through the API ----------------------------------------------------------------------

ROLES = {
    "officer": "officer1",  # one of the inspection's officers
    "leader": "leader1",  # leader of its squadron
    "other_leader": "leader2",  # leader of another squadron
    "supervisor": "supervisor",
    "admin": "admin",
}


def _state_of(app, inspection_id) -> str:
    with app.app_context():
        state = db.session.get(Inspection, uuid.UUID(inspection_id)).state.value
        db.session.remove()
    return state


def _inspection_in(state: str, world, login) -> tuple[str, FakeDevice]:
    """An inspection of officer1 and officer2 in ``state``, and officer1's device."""
    device = FakeDevice(login("officer1"))
    if state == "draft":
        inspection_id = push_inspection(
            world, device, status="draft", outcome="compliant", ended_at=ENDED
        )
        return inspection_id, device
    inspection_id = push_inspection(world, device)
    if state == "approved":
        review_ok(login("leader1", "dev-leader1-setup"), inspection_id, "approve")
    elif state == "returned":
        review_ok(login("leader1", "dev-leader1-setup"), inspection_id, "return", "补充照片")
    return inspection_id, device


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("decision", ["approve", "return"])
@pytest.mark.parametrize("state", list(STATE_FIELDS))
def test_review_by_state_and_role(app, login, world, state, decision, role):
    inspection_id, _ = _inspection_in(state, world, login)
    api = login(ROLES[role])
    if role == "other_leader":  # out of scope: cannot read it (404), cannot write it (403)
        assert_error(api.get(inspection_path(inspection_id)), 404, "not_found")
        response = api.post(
            f"{inspection_path(inspection_id)}/review",
            json={"decision": decision, "comment": "理由"},
            headers={"If-Match": '"whatever"'},
        )
        assert_error(response, 403, "forbidden")
    elif role in ("officer", "supervisor"):
        assert_error(review(api, inspection_id, decision, "理由"), 403, "forbidden")
    elif (state, decision) in ALLOWED:
        body = review_ok(api, inspection_id, decision, "理由")
        assert body["review"]["status"] == ALLOWED[state, decision]
        assert body["review"]["reviewed_by"] == str(world.users[ROLES[role]].id)
    else:
        body = assert_error(review(api, inspection_id, decision, "理由"), 409, "invalid_transition")
        assert "decision" in body["errors"]["json"]
    expected = ALLOWED.get((state, decision), state) if role in ("leader", "admin") else state
    assert _state_of(app, inspection_id) == expected


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("state", list(STATE_FIELDS))
def test_submit_from_a_device_by_state_and_role(app, login, world, state, role):
    inspection_id, _ = _inspection_in(state, world, login)
    device = FakeDevice(login(ROLES[role], f"pad-{role}"))
    version = login("admin", "dev-admin-reader").get(inspection_path(inspection_id)).get_json()
    [result] = device.push_ok(
        device.change(
            "inspection", inspection_id, {"status": "submitted"}, base_version=version["version"]
        )
    )
    if role != "officer":  # only its officers write it, leaders in or out of its squadron
        assert result["status"] == "rejected" and result["error"]["error"] == "forbidden"
        expected = state
    elif state == "approved":  # frozen: the edit waits in the conflict log as an amendment
        assert result["status"] == "conflict"
        expected = "approved"
    else:  # a draft and a returned record are submitted; a pending one already is
        assert result["status"] == "applied"
        expected = "pending"
    assert _state_of(app, inspection_id) == expected


@pytest.mark.parametrize("role", list(ROLES))
def test_reopen_by_accepting_an_amendment_by_role(app, login, world, role):
    inspection_id, device = _inspection_in("approved", world, login)
    version = login("leader1").get(inspection_path(inspection_id)).get_json()["version"]
    [result] = device.push_ok(
        device.change("inspection", inspection_id, {"findings": "补记"}, base_version=version)
    )
    conflict_id = result["conflicts"][0]["conflict_id"]
    response = login(ROLES[role], f"pad-{role}").post(
        f"/api/v1/conflicts/{conflict_id}/resolve", json={"keep": "client"}
    )
    if role in ("leader", "admin"):
        assert response.status_code == 200, response.get_json()
        assert _state_of(app, inspection_id) == "pending"
    else:
        assert_error(response, 403, "forbidden")  # out of scope, or not the leader's to settle
        assert _state_of(app, inspection_id) == "approved"


# -- who reviews ---------------------------------------------------------------------------------


def test_a_leader_who_was_one_of_its_officers_may_not_review_it_but_an_admin_may(login, world):
    device = FakeDevice(login("officer1"))
    inspection_id = push_inspection(world, device, officers=("officer1", "leader1"))
    leader = login("leader1")
    # Not in the leader's queue: it waits in the admin's.
    assert leader.get("/api/v1/review/queue").get_json()["items"] == []
    admin_queue = login("admin").get("/api/v1/review/queue").get_json()["items"]
    assert [i["id"] for i in admin_queue] == [inspection_id]
    body = assert_error(review(leader, inspection_id, "approve"), 403, "forbidden")
    assert "officers" in body["message"]
    assert review_ok(login("admin"), inspection_id, "approve")["review"]["status"] == "approved"


@pytest.mark.parametrize("creator", ["leader1", "officer1"])
def test_a_leader_dropped_from_the_officers_still_may_not_review_it(login, world, creator):
    """DESIGN: a leader "must never review their own inspection". Taking him off the officers
    by a later edit (his own device's or a colleague's) does not make it someone else's."""
    device = FakeDevice(login(creator, f"dev-{creator}-pad"))
    inspection_id = push_inspection(world, device, officers=("leader1", "officer1"))
    others = [str(world.users["officer1"].id), str(world.users["officer2"].id)]
    [result] = device.push_ok(
        device.change("inspection", inspection_id, {"officer_ids": others}, base_version=1)
    )
    assert result["status"] == "applied", result
    leader = login("leader1")
    if creator == "leader1":  # what he created waits in the admin's queue, not his
        assert leader.get("/api/v1/review/queue").get_json()["items"] == []
    body = assert_error(review(leader, inspection_id, "approve"), 403, "forbidden")
    assert "officers" in body["message"]
    assert leader.get(inspection_path(inspection_id)).get_json()["review"]["status"] == "pending"
    assert review_ok(login("admin"), inspection_id, "approve")["review"]["status"] == "approved"


# -- concurrency -----------------------------------------------------------------------------------


def test_two_leaders_reviewing_at_once_one_wins_the_other_gets_409(app, login, world):
    add_second_leader(app, world, "leader1b")
    inspection_id = push_inspection(world, FakeDevice(login("officer1")))
    first, second = login("leader1"), login("leader1b")
    path = inspection_path(inspection_id)
    etag_first, etag_second = etag_of(first, path), etag_of(second, path)
    assert etag_first == etag_second
    assert review(first, inspection_id, "approve", etag=etag_first).status_code == 200
    late = review(second, inspection_id, "return", "照片不清", etag=etag_second)
    assert_error(late, 409, "version_conflict")
    record = first.get(path).get_json()
    assert record["review"]["status"] == "approved"
    assert record["review"]["reviewed_by"] == str(world.users["leader1"].id)
    assert len(audit_entries(app, action="inspection.approve", record_id=inspection_id)) == 1
    assert audit_entries(app, action="inspection.return", record_id=inspection_id) == []


def test_a_review_racing_past_the_etag_check_loses_at_the_write(app, login, world):
    """Both passed If-Match; the other committed first: the row's version check refuses."""
    inspection_id = push_inspection(world, FakeDevice(login("officer1")))
    with app.app_context():
        leader = db.session.get(User, world.users["leader1"].id)
        inspection = db.session.get(Inspection, uuid.UUID(inspection_id))
        db.session.execute(  # the other leader's review, committed meanwhile
            sa.update(Inspection.__table__)
            .where(Inspection.__table__.c.id == inspection.id)
            .values(version=Inspection.__table__.c.version + 1)
        )
        with pytest.raises(StaleDataError):
            operations.review(Actor(leader), inspection, "approve", None, datetime.now(UTC))
        db.session.rollback()


# -- what a review does ----------------------------------------------------------------------------


def test_a_review_is_a_new_version_with_a_new_etag_and_an_audit_entry(app, login, world):
    inspection_id = push_inspection(world, FakeDevice(login("officer1")))
    leader = login("leader1")
    path = inspection_path(inspection_id)
    before = leader.get(path)
    response = review(leader, inspection_id, "return", "  请补充当事人陈述  ")
    assert response.status_code == 200
    body = response.get_json()
    assert body["version"] == before.get_json()["version"] + 1
    assert body["review"]["comment"] == "请补充当事人陈述"
    assert response.headers["ETag"] != before.headers["ETag"]
    assert response.headers["ETag"] == leader.get(path).headers["ETag"]
    [entry] = audit_entries(app, action="inspection.return", record_id=inspection_id)
    assert entry.after["review"]["status"] == "returned"
    assert entry.actor_id == world.users["leader1"].id
    history = leader.get(f"{path}/history").get_json()
    assert history[-1]["changes"]["review"]["to"]["status"] == "returned"


def test_a_returned_record_reaches_the_device_and_is_resubmitted(app, login, world):
    device = FakeDevice(login("officer1"))
    inspection_id = push_inspection(world, device)
    device.pull_all()
    leader = login("leader1")
    review_ok(leader, inspection_id, "return", "现场照片缺失，请补拍")

    pulled = [c for c in device.pull_all() if c["entity"] == "inspection"]
    assert [c["id"] for c in pulled] == [inspection_id]
    returned = pulled[0]["data"]
    assert returned["review"]["status"] == "returned"
    assert returned["review"]["comment"] == "现场照片缺失，请补拍"
    assert pulled[0]["version"] == 2

    # The officer edits on the version the pull brought, and resubmits.
    [result] = device.push_ok(
        device.change(
            "inspection",
            inspection_id,
            {"findings": "已补拍", "status": "submitted"},
            base_version=returned["version"],
        )
    )
    assert result["status"] == "applied"
    record = leader.get(inspection_path(inspection_id)).get_json()
    assert record["status"] == "submitted" and record["review"]["status"] == "pending"
    assert record["review"]["comment"] is None and record["findings"] == "已补拍"
    queue = leader.get("/api/v1/review/queue").get_json()["items"]
    assert [i["id"] for i in queue] == [inspection_id]
    assert review_ok(leader, inspection_id, "approve")["review"]["status"] == "approved"


def test_a_device_still_on_the_version_before_the_review_merges(app, login, world):
    """Its base is the pre-review version: the snapshot the review left lets it merge."""
    device = FakeDevice(login("officer1"))
    inspection_id = push_inspection(world, device)
    review_ok(login("leader1"), inspection_id, "return", "补充")
    [result] = device.push_ok(
        device.change("inspection", inspection_id, {"findings": "离线补记"}, base_version=1)
    )
    assert result["status"] == "merged" and result["version"] == 3
    record = login("leader1").get(inspection_path(inspection_id)).get_json()
    assert record["findings"] == "离线补记" and record["review"]["status"] == "returned"


def test_approval_changes_the_targets_risk(login, world):
    leader = login("leader1")
    risk_path = f"/api/v1/targets/{world.targets['shop1'].id}/risk"
    before = leader.get(risk_path).get_json()
    inspection_id = push_inspection(world, FakeDevice(login("officer1")), answers=FAILED_S03)
    assert leader.get(risk_path).get_json()["level"] == before["level"]  # pending: not counted
    review_ok(leader, inspection_id, "approve")
    after = leader.get(risk_path).get_json()
    assert before["level"] != "high" and after["level"] == "high"  # a severe finding's floor
    assert any(f["factor"] == "compliance" for f in after["factors"])


def test_a_return_leaves_the_risk_alone(login, world):
    leader = login("leader1")
    risk_path = f"/api/v1/targets/{world.targets['shop1'].id}/risk"
    before = leader.get(risk_path).get_json()
    inspection_id = push_inspection(world, FakeDevice(login("officer1")), answers=FAILED_S03)
    review_ok(leader, inspection_id, "return", "证据不足")
    assert leader.get(risk_path).get_json()["score"] == before["score"]


CASE_NUMBER = re.compile(r"^沪宝城管罚字〔\d{4}〕第\d{6}号$")


def test_approving_a_case_opened_inspection_opens_one_case(app, login, world):
    device = FakeDevice(login("officer1"))
    first = push_inspection(world, device, answers=FAILED_S03, outcome="case_opened")
    second = push_inspection(world, device, answers=FAILED_S03, outcome="case_opened")
    leader = login("leader1")
    pending = leader.get(inspection_path(first)).get_json()
    assert pending["case"] is None
    approved = review_ok(leader, first, "approve")
    assert CASE_NUMBER.match(approved["case"]["number"])
    assert approved["case"]["item_code"] == "S03"
    number_2 = review_ok(leader, second, "approve")["case"]["number"]
    assert int(number_2[-7:-1]) == int(approved["case"]["number"][-7:-1]) + 1

    # An amendment reopens it; approving it again keeps the one case.
    version = leader.get(inspection_path(first)).get_json()["version"]
    [result] = device.push_ok(
        device.change("inspection", first, {"findings": "补记"}, base_version=version)
    )
    leader.post(
        f"/api/v1/conflicts/{result['conflicts'][0]['conflict_id']}/resolve",
        json={"keep": "client"},
    )
    again = review_ok(leader, first, "approve")
    assert again["case"]["number"] == approved["case"]["number"]
    target_file = leader.get(f"/api/v1/targets/{world.targets['shop1'].id}").get_json()
    assert sorted(c["number"] for c in target_file["cases"]) == sorted(
        [approved["case"]["number"], number_2]
    )
    assert len(audit_entries(app, action="case.open")) == 2


def test_a_returned_case_opened_inspection_opens_no_case(login, world):
    inspection_id = push_inspection(
        world, FakeDevice(login("officer1")), answers=FAILED_S03, outcome="case_opened"
    )
    assert review_ok(login("leader1"), inspection_id, "return", "案由不清")["case"] is None


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"decision": "reject"}, "decision"),
        ({"decision": "return"}, "comment"),
        ({"decision": "return", "comment": "   "}, "comment"),
        ({"comment": "好"}, "decision"),
        ({"decision": "approve", "score": 5}, "score"),
        ({"decision": "approve", "comment": "x" * 2001}, "comment"),
        ({"decision": 1}, "decision"),
    ],
)
def test_bad_reviews_are_refused_field_by_field(login, world, body, field):
    inspection_id = push_inspection(world, FakeDevice(login("officer1")))
    leader = login("leader1")
    etag = etag_of(leader, inspection_path(inspection_id))
    response = leader.post(
        f"{inspection_path(inspection_id)}/review", json=body, headers={"If-Match": etag}
    )
    assert field in assert_error(response, 422, "validation_failed")["errors"]["json"]
    assert leader.get(inspection_path(inspection_id)).get_json()["review"]["status"] == "pending"


@pytest.mark.parametrize(
    ("if_match", "status", "error"),
    [
        (None, 428, "precondition_required"),
        ("", 428, "precondition_required"),
        ("*", 428, "precondition_required"),
        ("not-quoted", 400, "malformed_if_match"),
        ('"unterminated', 400, "malformed_if_match"),
        ('"a" "b"', 400, "malformed_if_match"),
        ('"0123456789abcdef"', 409, "version_conflict"),
        ('W/"0123"', 409, "version_conflict"),
        ('""', 409, "version_conflict"),
        ('"", W/""', 409, "version_conflict"),
    ],
)
def test_the_review_needs_the_current_etag(login, world, if_match, status, error):
    inspection_id = push_inspection(world, FakeDevice(login("officer1")))
    leader = login("leader1")
    headers = {} if if_match is None else {"If-Match": if_match}
    response = leader.post(
        f"{inspection_path(inspection_id)}/review", json={"decision": "approve"}, headers=headers
    )
    assert_error(response, status, error)
    assert leader.get(inspection_path(inspection_id)).get_json()["review"]["status"] == "pending"


def test_the_review_accepts_the_etag_among_others(login, world):
    inspection_id = push_inspection(world, FakeDevice(login("officer1")))
    leader = login("leader1")
    etag = etag_of(leader, inspection_path(inspection_id))
    response = leader.post(
        f"{inspection_path(inspection_id)}/review",
        json={"decision": "approve"},
        headers={"If-Match": f'"older", {etag}'},
    )
    assert response.status_code == 200


def test_the_review_may_send_an_etag_read_before_the_follow_up(login, world):
    """``If-Match`` is about the record's version, not about what its answer derives from other
    records: a leader who read a rectification order before its follow-up (复查) arrived may
    still review it, and so may a client holding only the version part of the tag (its form
    before the ETag covered the body). The tag of the version before is 409."""
    device = FakeDevice(login("officer1"))
    ordered = push_inspection(
        world,
        device,
        answers=FAILED_S03,
        outcome="rectification_ordered",
        rectification_deadline="2026-12-31",
    )
    leader = login("leader1")
    before = etag_of(leader, inspection_path(ordered))
    done = push_inspection(world, device, follow_up_of=ordered)
    assert etag_of(leader, inspection_path(ordered)) != before
    response = review(leader, ordered, "approve", etag=before)
    assert response.status_code == 200, response.get_json()
    assert response.headers["ETag"] == etag_of(leader, inspection_path(ordered))
    version_only = etag_of(leader, inspection_path(done)).split(".")[0] + '"'
    response = review(leader, done, "approve", etag=version_only)
    assert response.status_code == 200, response.get_json()
    assert_error(review(leader, ordered, "approve", etag=before), 409, "version_conflict")


def test_reviews_of_unknown_inspections_are_404(login, world):
    leader = login("leader1")
    for path in (f"/api/v1/inspections/{uuid.uuid4()}", "/api/v1/inspections/not-a-uuid"):
        response = leader.post(f"{path}/review", json={"decision": "approve"})
        assert_error(response, 404, "not_found")
