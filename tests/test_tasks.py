"""Tasks (任务下派): a leader dispatches, devices pull, approval closes, the leader cancels;
overdue tasks on a frozen clock; every bad request refused field by field."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from fieldapp.complaints.models import Complaint
from fieldapp.db import db
from fieldapp.tasks import operations as task_ops
from tests.conftest import (
    add_shop,
    assert_error,
    audit_entries,
    etag_of,
    paused_while_edited,
    sign_in,
    status_of,
)
from tests.review_helpers import FAILED_S03, push_inspection, review_ok
from tests.sync_helpers import FakeDevice

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def task_body(world, **overrides) -> dict:
    return {
        "target_id": str(world.targets["shop1"].id),
        "assignee_ids": [str(world.users["officer1"].id), str(world.users["officer2"].id)],
        "due": (NOW + timedelta(days=2)).isoformat(),
        "note": "节前市容环境专项检查",
        "origin": "manual",
        **overrides,
    }


def dispatch(api, world, **overrides) -> dict:
    response = api.post("/api/v1/tasks", json=task_body(world, **overrides))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def patch_target(api, target_id, changes: dict) -> dict:
    """``PATCH`` the target with the ETag read just before (a leader's or admin's edit)."""
    path = f"/api/v1/targets/{target_id}"
    response = api.patch(path, json=changes, headers={"If-Match": etag_of(api, path)})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def record_complaint(api, world, **overrides) -> dict:
    """A 12345 complaint about shop1, recorded by ``api`` (its squadron's leader); an override
    of None leaves that field out (``target_id=None`` with a ``squadron_id``: no target)."""
    body = {
        "target_id": str(world.targets["shop1"].id),
        "category": "油烟",
        "text": "饭店油烟扰民",
        "received_at": (NOW - timedelta(days=1)).isoformat(),
        **overrides,
    }
    body = {name: value for name, value in body.items() if value is not None}
    response = api.post("/api/v1/complaints", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_leader_dispatches_a_task_that_reaches_the_assignees_devices(app, clock, login, world):
    device = FakeDevice(login("officer1"))
    device.pull_all()
    task = dispatch(login("leader1"), world)
    assert task["status"] == "open" and task["origin"] == "manual"
    assert sorted(task["assignee_ids"]) == sorted(
        [str(world.users["officer1"].id), str(world.users["officer2"].id)]
    )
    assert task["squadron_id"] == world.squadrons[0].id and task["overdue"] is False
    [entry] = audit_entries(app, action="task.create", record_id=task["id"])
    assert entry.actor_id == world.users["leader1"].id

    pulled = [c for c in device.pull_all() if c["entity"] == "task"]
    assert [(c["id"], c["data"]["status"]) for c in pulled] == [(task["id"], "open")]
    assert login("officer1").get(f"/api/v1/tasks/{task['id']}").status_code == 200
    assert_error(login("officer3").get(f"/api/v1/tasks/{task['id']}"), 404, "not_found")


def test_who_may_dispatch(clock, login, world):
    for username in ("officer1", "supervisor"):
        assert_error(login(username).post("/api/v1/tasks", json=task_body(world)), 403, "forbidden")
    # Another squadron's target: an out-of-scope write; a target that does not exist: 422.
    assert_error(login("leader2").post("/api/v1/tasks", json=task_body(world)), 403, "forbidden")
    response = login("leader1").post(
        "/api/v1/tasks", json={**task_body(world), "target_id": str(uuid.uuid4())}
    )
    assert "target_id" in assert_error(response, 422, "validation_failed")["errors"]["json"]
    assert dispatch(login("admin"), world)["status"] == "open"


def test_no_task_is_sent_to_a_deactivated_target(clock, login, world):
    """A shop that closed down (停业) is deactivated (``active: false``); the schedule and the
    draws never send officers to it any more, and neither can a leader by hand: 422 on
    ``target_id``, no task dispatched, none reaches a device."""
    leader = login("leader1")
    patch_target(leader, world.targets["shop1"].id, {"active": False})
    response = leader.post("/api/v1/tasks", json=task_body(world))
    assert "target_id" in assert_error(response, 422, "validation_failed")["errors"]["json"]
    assert leader.get("/api/v1/tasks").get_json()["items"] == []


def test_deactivating_a_target_cancels_its_open_tasks(app, clock, login, world):
    """leader1 sent officer1 to shop1, then learns it closed down and deactivates it. The open
    task is cancelled in the same edit, saying why, by the leader, with its own audit entry:
    it no longer waits (overdue, in time) in the list nor sends officer1 to a closed shop (the
    pad pulls it as cancelled). A task already done stays done, and reactivating the shop reopens
    nothing: cancelled is final."""
    leader = login("leader1")
    done = dispatch(leader, world, assignee_ids=[str(world.users["officer2"].id)])
    device = FakeDevice(login("officer1"))
    device.pull_all()
    inspection_id = push_inspection(world, device, origin="task", task_id=done["id"])
    review_ok(leader, inspection_id, "approve")
    task = dispatch(leader, world, assignee_ids=[str(world.users["officer1"].id)])
    device.pull_all()

    patch_target(leader, world.targets["shop1"].id, {"active": False})

    reason = "执法对象老王面馆已停用，任务取消"
    cancelled = leader.get(f"/api/v1/tasks/{task['id']}").get_json()
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", reason)
    assert cancelled["cancelled_by_id"] == str(world.users["leader1"].id)
    assert leader.get(f"/api/v1/tasks/{done['id']}").get_json()["status"] == "done"
    [entry] = audit_entries(app, action="task.cancel")
    assert (entry.record_id, entry.after) == (task["id"], {"status": "cancelled", "reason": reason})
    assert entry.actor_id == world.users["leader1"].id
    pulled = {c["id"]: c["data"] for c in device.pull_all() if c["entity"] == "task"}
    assert pulled[task["id"]]["status"] == "cancelled"

    patch_target(leader, world.targets["shop1"].id, {"active": True})
    assert leader.get(f"/api/v1/tasks/{task['id']}").get_json()["status"] == "cancelled"
    assert len(audit_entries(app, action="task.cancel")) == 1


def test_approval_closes_the_task_and_a_return_does_not(app, clock, login, world):
    leader = login("leader1")
    task = dispatch(leader, world)
    device = FakeDevice(login("officer1"))
    device.pull_all()
    inspection_id = push_inspection(world, device, origin="task", task_id=task["id"])

    review_ok(leader, inspection_id, "return", "请补充照片")
    assert leader.get(f"/api/v1/tasks/{task['id']}").get_json()["status"] == "open"

    version = leader.get(f"/api/v1/inspections/{inspection_id}").get_json()["version"]
    device.push_ok(
        device.change("inspection", inspection_id, {"status": "submitted"}, base_version=version)
    )
    review_ok(leader, inspection_id, "approve")
    closed = leader.get(f"/api/v1/tasks/{task['id']}").get_json()
    assert closed["status"] == "done"
    assert closed["closed_by_inspection_id"] == inspection_id
    assert closed["closed_at"] is not None
    pulled = {c["id"]: c["data"] for c in device.pull_all() if c["entity"] == "task"}
    assert pulled[task["id"]]["status"] == "done"
    assert pulled[task["id"]]["closed_by_inspection_id"] == inspection_id
    assert len(audit_entries(app, action="task.close", record_id=task["id"])) == 1


def test_an_inspection_of_another_target_does_not_close_the_task(clock, login, world):
    leader = login("leader1")
    task = dispatch(leader, world)
    inspection_id = push_inspection(
        world, FakeDevice(login("officer1")), target="site1", origin="task", task_id=task["id"]
    )
    review_ok(leader, inspection_id, "approve")
    assert leader.get(f"/api/v1/tasks/{task['id']}").get_json()["status"] == "open"


def test_a_leader_cancels_a_task_with_a_reason(app, clock, login, world):
    leader = login("leader1")
    task = dispatch(leader, world)
    device = FakeDevice(login("officer1"))
    device.pull_all()
    path = f"/api/v1/tasks/{task['id']}/cancel"
    assert_error(login("officer1").post(path, json={"reason": "不去了"}), 403, "forbidden")
    assert_error(login("leader2").post(path, json={"reason": "x"}), 403, "forbidden")
    body = assert_error(leader.post(path, json={}), 422, "validation_failed")
    assert "reason" in body["errors"]["json"]
    assert_error(leader.post(path, json={"reason": "  "}), 422, "validation_failed")

    response = leader.post(path, json={"reason": "商户已停业"})
    assert response.status_code == 200
    cancelled = response.get_json()
    assert cancelled["status"] == "cancelled" and cancelled["cancel_reason"] == "商户已停业"
    assert cancelled["cancelled_by_id"] == str(world.users["leader1"].id)
    pulled = {c["id"]: c["data"] for c in device.pull_all() if c["entity"] == "task"}
    assert pulled[task["id"]]["status"] == "cancelled"
    assert pulled[task["id"]]["cancel_reason"] == "商户已停业"
    assert_error(leader.post(path, json={"reason": "再次"}), 409, "invalid_transition")
    [entry] = audit_entries(app, action="task.cancel", record_id=task["id"])
    assert entry.after == {"status": "cancelled", "reason": "商户已停业"}


def test_overdue_tasks_on_a_frozen_clock(clock, login, world):
    leader = login("leader1")
    soon = dispatch(leader, world, due=(NOW + timedelta(hours=5)).isoformat(), note="soon")
    later = dispatch(leader, world, due=(NOW + timedelta(days=3)).isoformat(), note="later")
    done = dispatch(leader, world, due=(NOW + timedelta(hours=1)).isoformat(), note="done")
    inspection_id = push_inspection(
        world, FakeDevice(login("officer1")), origin="task", task_id=done["id"]
    )
    review_ok(leader, inspection_id, "approve")

    assert leader.get("/api/v1/tasks?overdue=true").get_json()["items"] == []
    clock.move_to(NOW + timedelta(days=1))
    overdue = leader.get("/api/v1/tasks?overdue=true").get_json()["items"]
    assert [t["id"] for t in overdue] == [soon["id"]] and overdue[0]["overdue"] is True
    not_overdue = leader.get("/api/v1/tasks?overdue=false").get_json()["items"]
    assert [t["id"] for t in not_overdue] == [done["id"], later["id"]]  # soonest due first
    clock.move_to(NOW + timedelta(days=4))
    query = f"overdue=true&squadron_id={world.squadrons[0].id}"
    overdue = leader.get(f"/api/v1/tasks?{query}").get_json()["items"]
    assert [t["id"] for t in overdue] == [soon["id"], later["id"]]
    assert login("leader2").get("/api/v1/tasks?overdue=true").get_json()["items"] == []


def test_tasks_are_listed_by_assignee_status_and_target(clock, login, world):
    leader = login("leader1")
    both = dispatch(leader, world)
    solo = dispatch(
        leader,
        world,
        assignee_ids=[str(world.users["officer2"].id)],
        target_id=str(world.targets["site1"].id),
    )
    officer1 = str(world.users["officer1"].id)

    def ids(query: str) -> list[str]:
        response = leader.get(f"/api/v1/tasks?{query}")
        assert response.status_code == 200, response.get_json()
        return [t["id"] for t in response.get_json()["items"]]

    assert ids(f"assignee_id={officer1}") == [both["id"]]
    assert ids(f"target_id={world.targets['site1'].id}") == [solo["id"]]
    assert sorted(ids("status=open")) == sorted([both["id"], solo["id"]])
    assert ids("status=done") == []
    page = leader.get("/api/v1/tasks?per_page=1").get_json()
    assert len(page["items"]) == 1 and page["has_more"] is True


def test_a_complaint_task_reaches_the_device_with_its_complaint(clock, login, world):
    """An officer sent on a 12345 complaint works offline from what the device pulled: the
    pulled task carries its ``complaint_id`` as the task read over REST does, so the device
    can tell which complaint it is checking."""
    leader = login("leader1")
    complaint = record_complaint(leader, world, reference="2026112300003")
    device = FakeDevice(login("officer1"))
    device.pull_all()
    task = dispatch(leader, world, origin="complaint", complaint_id=complaint["id"])
    assert task["complaint_id"] == complaint["id"]
    [pulled] = [c for c in device.pull_all() if c["entity"] == "task"]
    assert pulled["data"]["complaint_id"] == complaint["id"]
    manual = dispatch(leader, world)
    [pulled] = [c for c in device.pull_all() if c["entity"] == "task"]
    assert (pulled["id"], pulled["data"]["complaint_id"]) == (manual["id"], None)


def test_a_complaint_task_names_its_complaint(app, clock, login, world):
    with app.app_context():
        complaint = Complaint(
            target_id=world.targets["shop1"].id,
            squadron_id=world.squadrons[0].id,
            category="油烟",
            text="饭店油烟扰民",
        )
        elsewhere = Complaint(squadron_id=world.squadrons[1].id, category="噪音", text="夜间施工")
        db.session.add_all([complaint, elsewhere])
        db.session.commit()
        complaint_id, elsewhere_id = str(complaint.id), str(elsewhere.id)
    leader = login("leader1")
    task = dispatch(leader, world, origin="complaint", complaint_id=complaint_id)
    assert task["complaint_id"] == complaint_id
    response = leader.post(
        "/api/v1/tasks", json=task_body(world, origin="complaint", complaint_id=elsewhere_id)
    )
    assert "complaint_id" in assert_error(response, 422, "validation_failed")["errors"]["json"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"assignee_ids": ["officer3"]}, "assignee_ids"),  # another squadron's officer
        ({"assignee_ids": ["supervisor"]}, "assignee_ids"),
        ({"assignee_ids": ["leader1"]}, "assignee_ids"),  # leaders send, officers go
        ({"assignee_ids": [str(uuid.uuid4())]}, "assignee_ids"),
        ({"assignee_ids": []}, "assignee_ids"),
        ({"assignee_ids": ["officer1", "officer1"]}, "assignee_ids"),
        ({"assignee_ids": "officer1"}, "assignee_ids"),
        ({"due": (NOW - timedelta(minutes=1)).isoformat()}, "due"),
        ({"due": (NOW + timedelta(days=400)).isoformat()}, "due"),
        ({"due": "2026-11-30T10:00:00"}, "due"),  # no offset
        ({"due": "next week"}, "due"),
        ({"target_id": str(uuid.uuid4())}, "target_id"),
        ({"target_id": "shop"}, "target_id"),
        ({"origin": "draw"}, "origin"),
        ({"origin": "whim"}, "origin"),
        ({"origin": "complaint"}, "complaint_id"),
        ({"complaint_id": str(uuid.uuid4())}, "complaint_id"),  # only with origin complaint
        ({"note": "x" * 2001}, "note"),
        ({"priority": "high"}, "priority"),
        ({"status": "done"}, "status"),
    ],
)
def test_bad_tasks_are_refused_field_by_field(app, clock, login, world, overrides, field):
    names = overrides.get("assignee_ids")
    if isinstance(names, list):
        overrides["assignee_ids"] = [
            str(world.users[n].id) if n in world.users else n for n in names
        ]
    leader = login("leader1")
    body = assert_error(
        leader.post("/api/v1/tasks", json=task_body(world, **overrides)), 422, "validation_failed"
    )
    assert field in body["errors"]["json"], body
    assert leader.get("/api/v1/tasks").get_json()["items"] == []


@pytest.mark.parametrize(
    "query", ["overdue=maybe", "status=late", "assignee_id=me", "squadron_id=x", "per_page=0"]
)
def test_bad_task_queries_are_422(clock, login, world, query):
    assert_error(login("leader1").get(f"/api/v1/tasks?{query}"), 422, "validation_failed")


def test_unknown_tasks_are_404(clock, login, world):
    leader = login("leader1")
    assert_error(leader.get(f"/api/v1/tasks/{uuid.uuid4()}"), 404, "not_found")
    response = leader.post(f"/api/v1/tasks/{uuid.uuid4()}/cancel", json={"reason": "x"})
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("violation", [True, False])
def test_approving_a_complaint_task_settles_the_complaint(app, clock, login, world, violation):
    from tests.sync_helpers import SHOP_ANSWERS

    with app.app_context():
        complaint = Complaint(
            target_id=world.targets["shop1"].id,
            squadron_id=world.squadrons[0].id,
            category="油烟",
            text="饭店油烟扰民",
            received_at=NOW - timedelta(days=1),
        )
        db.session.add(complaint)
        db.session.commit()
        complaint_id = complaint.id
    leader = login("leader1")
    task = dispatch(leader, world, origin="complaint", complaint_id=str(complaint_id))
    inspection_id = push_inspection(
        world,
        FakeDevice(login("officer1")),
        origin="task",
        task_id=task["id"],
        answers=FAILED_S03 if violation else SHOP_ANSWERS,
    )
    shop = str(world.targets["shop1"].id)
    changes_before = len(audit_entries(app, action="risk.level_change", record_id=shop))
    review_ok(leader, inspection_id, "approve")
    # One assessment after everything the approval set off: at most one level change.
    changes = len(audit_entries(app, action="risk.level_change", record_id=shop))
    assert changes - changes_before <= 1
    with app.app_context():
        settled = db.session.get(Complaint, complaint_id)
        assert settled.substantiated is violation and settled.closed_at is not None
        assert str(settled.inspection_id) == inspection_id  # the complaint names its check
    assert len(audit_entries(app, action="complaint.decide", record_id=str(complaint_id))) == 1
    risk = leader.get(f"/api/v1/targets/{world.targets['shop1'].id}/risk").get_json()
    assert any(f["factor"] == "complaints" for f in risk["factors"]) is violation


def test_a_task_for_a_complaint_without_a_target_settles_it_on_the_tasks_target(
    app, clock, login, world
):
    """A hotline ticket naming only a street, sent out as a task on the shop the leader thinks
    it is about: approving the check closes the task and settles the complaint on that shop."""
    leader = login("leader1")
    response = leader.post(
        "/api/v1/complaints",
        json={"squadron_id": world.squadrons[0].id, "category": "油烟", "text": "淞滨路饭店油烟"},
    )
    assert response.status_code == 201, response.get_json()
    complaint_id = response.get_json()["id"]
    task = dispatch(leader, world, origin="complaint", complaint_id=complaint_id)
    inspection_id = push_inspection(
        world, FakeDevice(login("officer1")), origin="task", task_id=task["id"], answers=FAILED_S03
    )
    review_ok(leader, inspection_id, "approve")
    assert leader.get(f"/api/v1/tasks/{task['id']}").get_json()["status"] == "done"
    complaint = leader.get(f"/api/v1/complaints/{complaint_id}").get_json()
    assert complaint["status"] == "closed" and complaint["substantiated"] is True
    assert complaint["target_id"] == str(world.targets["shop1"].id)
    risk = leader.get(f"/api/v1/targets/{world.targets['shop1'].id}/risk").get_json()
    assert any(f["factor"] == "complaints" for f in risk["factors"])


def test_a_corrected_decision_keeps_the_inspection_that_checked_the_complaint(clock, login, world):
    """A complaint task's approved inspection settles the complaint and is named as its check
    (``inspection_id``). The leader then corrects only the verdict: the complaint still names
    the inspection that answered the 12345 ticket (a correction that names no new one loses
    nothing)."""
    leader = login("leader1")
    complaint = record_complaint(leader, world, reference="2026112300001")
    task = dispatch(leader, world, origin="complaint", complaint_id=complaint["id"])
    inspection_id = push_inspection(
        world, FakeDevice(login("officer1")), origin="task", task_id=task["id"], answers=FAILED_S03
    )
    review_ok(leader, inspection_id, "approve")
    path = f"/api/v1/complaints/{complaint['id']}"
    assert leader.get(path).get_json()["inspection_id"] == inspection_id

    response = leader.post(
        f"{path}/decision", json={"substantiated": False, "note": "复核: 系误报"}
    )
    assert response.status_code == 200, response.get_json()
    corrected = response.get_json()
    assert (corrected["substantiated"], corrected["inspection_id"]) == (False, inspection_id)


@pytest.mark.parametrize(
    ("outcome", "extra"),
    [
        ("case_opened", {}),
        ("rectification_ordered", {"rectification_deadline": "2026-11-30"}),
        ("penalty_waived", {"legal_basis": "《上海市城市管理综合行政执法条例》首违不罚清单"}),
        ("corrected_on_site", {}),
    ],
)
def test_a_check_acting_on_a_violation_substantiates_its_complaint(
    clock, login, world, outcome, extra
):
    """A 12345 complaint about noise (噪声) is sent out as a task; the officers find the
    violation, which is on no checklist item (every item passes), describe it in ``findings``
    and act on it (order rectification, open a case, waive the first penalty, have it
    corrected on the spot). Approving the check closes the complaint as substantiated, and it
    counts in the target's risk: the check found what the citizen complained of."""
    leader = login("leader1")
    complaint = record_complaint(
        leader, world, category="噪声", text="面馆夜间鼓风机噪声扰民", reference="2026112300004"
    )
    task = dispatch(leader, world, origin="complaint", complaint_id=complaint["id"])
    inspection_id = push_inspection(
        world,
        FakeDevice(login("officer1")),
        origin="task",
        task_id=task["id"],
        outcome=outcome,
        findings="后厨鼓风机夜间噪声超标, 属实",
        **extra,
    )
    review_ok(leader, inspection_id, "approve")
    settled = leader.get(f"/api/v1/complaints/{complaint['id']}").get_json()
    assert settled["status"] == "closed" and settled["inspection_id"] == inspection_id
    assert settled["substantiated"] is True, settled
    risk = leader.get(f"/api/v1/targets/{world.targets['shop1'].id}/risk").get_json()
    assert any(f["factor"] == "complaints" for f in risk["factors"])


def test_approving_a_complaint_check_survives_the_target_moving(app, clock, login, world):
    """A ticket naming only a street (no registered target) is sent out as a task on shop1;
    the officers inspect and submit. Before the leader reviews, shop1 moves to squadron 2
    (the inspection stays squadron 1's, so leader1 still reviews it). The approval goes
    through, closes the task (which went with shop1 to squadron 2, whose leader sees it done)
    and settles the complaint on shop1: the check was squadron 1's, so the complaint stays with
    squadron 1, where it was settled."""
    leader = login("leader1")
    complaint = record_complaint(
        leader, world, target_id=None, squadron_id=world.squadrons[0].id, text="淞滨路饭店油烟"
    )
    task = dispatch(leader, world, origin="complaint", complaint_id=complaint["id"])
    inspection_id = push_inspection(
        world, FakeDevice(login("officer1")), origin="task", task_id=task["id"], answers=FAILED_S03
    )
    patch_target(login("admin"), world.targets["shop1"].id, {"squadron_id": world.squadrons[1].id})
    review_ok(leader, inspection_id, "approve")
    inspection = leader.get(f"/api/v1/inspections/{inspection_id}").get_json()
    assert inspection["review"]["status"] == "approved"
    closed = login("leader2").get(f"/api/v1/tasks/{task['id']}").get_json()
    assert (closed["status"], closed["squadron_id"]) == ("done", world.squadrons[1].id)
    settled = leader.get(f"/api/v1/complaints/{complaint['id']}").get_json()
    assert (settled["status"], settled["substantiated"]) == ("closed", True)
    assert settled["target_id"] == str(world.targets["shop1"].id)
    assert (settled["squadron_id"], settled["inspection_id"]) == (
        world.squadrons[0].id,
        inspection_id,
    )


def test_open_tasks_follow_their_target_to_its_new_squadron(app, clock, login, world):
    """leader1 sends officer1 to shop1; before officer1 goes, shop1 moves to squadron 2. The
    open task goes with the shop (audited ``task.move``): leader2 lists it and sees who is on
    the way, leader1 no longer does. officer1 keeps the task and the shop on the pad, inspects
    it, and leader2's approval closes the task. officer2's pad (squadron 1, not sent) drops the
    task; officer3's (squadron 2) gets it. A cancelled task stays squadron 1's history.

    Left behind, the task was out of leader2's sight and yet kept squadron 2's schedule from
    dispatching shop1 (it sends only targets with no open task)."""
    leader1 = login("leader1")
    done_with = dispatch(leader1, world, assignee_ids=[str(world.users["officer2"].id)])
    response = leader1.post(f"/api/v1/tasks/{done_with['id']}/cancel", json={"reason": "改派他人"})
    assert response.status_code == 200, response.get_json()
    task = dispatch(leader1, world, assignee_ids=[str(world.users["officer1"].id)])
    sent, colleague = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    newcomer = FakeDevice(login("officer3"))
    for device in (sent, colleague, newcomer):
        device.pull_all()

    patch_target(login("admin"), world.targets["shop1"].id, {"squadron_id": world.squadrons[1].id})

    leader2 = login("leader2")
    listed = leader2.get("/api/v1/tasks").get_json()["items"]
    assert [(t["id"], t["squadron_id"], t["assignee_ids"]) for t in listed] == [
        (task["id"], world.squadrons[1].id, [str(world.users["officer1"].id)])
    ]
    assert [t["id"] for t in leader1.get("/api/v1/tasks").get_json()["items"]] == [done_with["id"]]
    [moved] = audit_entries(app, action="task.move")
    assert (moved.record_id, moved.before, moved.after) == (
        task["id"],
        {"squadron_id": world.squadrons[0].id},
        {"squadron_id": world.squadrons[1].id},
    )
    # Pads: the last word on each record is what the pad ends up holding.
    last = {}
    for change in sent.pull_all():
        last[(change["entity"], change["id"])] = change["op"]
    shop = str(world.targets["shop1"].id)
    assert (last[("task", task["id"])], last[("target", shop)]) == ("upsert", "upsert")
    gone = {(c["entity"], c["id"], c["op"]) for c in colleague.pull_all()}
    assert {("task", task["id"], "delete"), ("target", shop, "delete")} <= gone
    arrived = {(c["entity"], c["id"], c["op"]) for c in newcomer.pull_all()}
    assert ("task", task["id"], "upsert") in arrived

    inspection_id = push_inspection(
        world, sent, ("officer1", "officer2"), origin="task", task_id=task["id"]
    )
    review_ok(leader2, inspection_id, "approve")
    assert leader2.get(f"/api/v1/tasks/{task['id']}").get_json()["status"] == "done"
    assert_error(leader1.get(f"/api/v1/tasks/{task['id']}"), 404, "not_found")


def test_open_complaints_follow_their_target_to_its_new_squadron(app, clock, login, world):
    """A 12345 complaint about shop1 waits, open, in squadron 1 when shop1 moves to squadron
    2, whose leader now answers for it (as open sync conflicts do). The open complaint goes
    with the shop, with an audit entry ``complaint.move``: leader2 reads it and dispatches its
    check (201), leader1 no longer lists it. A complaint already decided stays where it was
    decided, as squadron 1's history, and so does one about no registered target."""
    leader1 = login("leader1")
    waiting = record_complaint(leader1, world, reference="2026112300005")
    decided = record_complaint(leader1, world, reference="2026112300006")
    decision = {"substantiated": True, "note": "现场核实属实"}
    response = leader1.post(f"/api/v1/complaints/{decided['id']}/decision", json=decision)
    assert response.status_code == 200, response.get_json()
    street = record_complaint(leader1, world, target_id=None, squadron_id=world.squadrons[0].id)

    patch_target(login("admin"), world.targets["shop1"].id, {"squadron_id": world.squadrons[1].id})

    leader2 = login("leader2")
    assert leader2.get(f"/api/v1/complaints/{waiting['id']}").get_json()["squadron_id"] == (
        world.squadrons[1].id
    )
    listed = [c["id"] for c in leader1.get("/api/v1/complaints").get_json()["items"]]
    assert sorted(listed) == sorted([decided["id"], street["id"]])
    assert_error(leader2.get(f"/api/v1/complaints/{decided['id']}"), 404, "not_found")
    [moved] = audit_entries(app, action="complaint.move")
    assert moved.record_id == waiting["id"]
    assert (moved.before, moved.after) == (
        {"squadron_id": world.squadrons[0].id},
        {"squadron_id": world.squadrons[1].id},
    )
    task = dispatch(
        leader2,
        world,
        assignee_ids=[str(world.users["officer3"].id)],
        origin="complaint",
        complaint_id=waiting["id"],
    )
    assert task["squadron_id"] == world.squadrons[1].id
    # The old leader may no longer decide it (an out-of-scope write); the new one may.
    path = f"/api/v1/complaints/{waiting['id']}/decision"
    assert_error(leader1.post(path, json=decision), 403, "forbidden")
    assert leader2.post(path, json=decision).status_code == 200


# -- a task sent or cancelled while an admin edits its shop (PostgreSQL) --------------------------


def _while_the_admin_edits_the_shop(app, world, monkeypatch, tag, edit, pause_in, send):
    """leader1 sends a request about a new shop of squadron 1 (``send(leader, shop)``, called
    once the shop exists, gives it), paused as it calls ``pause_in`` (a function of
    ``fieldapp.tasks.operations``, called once it has read what it decides on) while the admin
    edits the shop (``edit``): see :func:`tests.conftest.paused_while_edited`. Returns (admin
    api, shop id, the leader's answer)."""
    leader = sign_in(app, "leader1", f"pad-race-{tag}-leader")
    admin = sign_in(app, "admin", f"pad-race-{tag}-admin")
    shop = add_shop(leader, world.squadrons[0].id, f"竞态小吃{tag}")
    path = f"/api/v1/targets/{shop}"
    answers = paused_while_edited(
        monkeypatch,
        task_ops,
        pause_in,
        send(leader, shop),
        lambda: admin.patch(path, json=edit, headers={"If-Match": etag_of(admin, path)}),
    )
    assert status_of(answers["edit"]) == 200, answers
    return admin, shop, answers["request"]


def _send_a_task(world):
    def send(leader, shop):
        body = task_body(world, target_id=shop, due=_two_days_on())
        return lambda: leader.post("/api/v1/tasks", json=body)

    return send


def test_a_task_sent_while_its_shop_is_deactivated_is_not_left_open(pg_app, monkeypatch):
    """The shop closes down (停业) and the admin deactivates it while leader1's task for it is
    being sent. The two take turns: the task is refused (422, the target is deactivated), or
    sent and then cancelled with the shop's other open tasks. Never sent open on the closed
    shop after the deactivation cancelled "every open task", sending officers to a closed shop
    and standing overdue in the list."""
    app, world = pg_app
    admin, shop, answer = _while_the_admin_edits_the_shop(
        app,
        world,
        monkeypatch,
        "closed",
        {"active": False},
        "squadron_officers",
        _send_a_task(world),
    )
    assert status_of(answer) in (201, 422), answer
    assert admin.get(f"/api/v1/targets/{shop}").get_json()["active"] is False
    still_open = admin.get(f"/api/v1/tasks?target_id={shop}&status=open").get_json()["items"]
    assert still_open == [], (status_of(answer), still_open)


def test_a_task_sent_while_its_shop_moves_goes_with_the_shop(pg_app, monkeypatch):
    """The admin moves the shop to squadron 2 while leader1's task for it is being sent. Open
    tasks follow their target: the task is sent before the move and goes along, or leader1,
    no longer answering for the shop, is refused (403). Never filed in squadron 1 for a shop of
    squadron 2, where leader2 cannot list it, leader1 lists a task for a shop it no longer
    answers for, and squadron 2's schedule never dispatches the shop while it is open."""
    app, world = pg_app
    admin, shop, answer = _while_the_admin_edits_the_shop(
        app,
        world,
        monkeypatch,
        "moved",
        {"squadron_id": world.squadrons[1].id},
        "squadron_officers",
        _send_a_task(world),
    )
    assert status_of(answer) in (201, 403), answer
    squadron = admin.get(f"/api/v1/targets/{shop}").get_json()["squadron_id"]
    assert squadron == world.squadrons[1].id
    tasks = admin.get(f"/api/v1/tasks?target_id={shop}&status=open").get_json()["items"]
    assert [t["squadron_id"] for t in tasks] == [squadron] * len(tasks), tasks


def test_a_leader_cancelling_while_the_shop_is_deactivated_is_told_what_became_of_the_task(
    pg_app, monkeypatch
):
    """leader1 calls a task off while the admin deactivates its shop, which cancels its open
    tasks. The two take turns: the leader cancels it (200, their reason) or is told it is
    cancelled already (409 ``invalid_transition``); the task is cancelled once, with one
    ``task.cancel`` entry. Before, the leader's cancel read the task before the deactivation
    committed, and was answered only that the record had changed in the meantime."""
    app, world = pg_app
    tasks = {}

    def cancel(leader, shop):
        tasks["id"] = dispatch(leader, world, target_id=shop, due=_two_days_on())["id"]
        path = f"/api/v1/tasks/{tasks['id']}/cancel"
        return lambda: leader.post(path, json={"reason": "改期检查"})

    _, _, answer = _while_the_admin_edits_the_shop(
        app, world, monkeypatch, "cancelling", {"active": False}, "cancel_task", cancel
    )
    entries = audit_entries(app, action="task.cancel", record_id=tasks["id"])
    assert len(entries) == 1, [entry.after for entry in entries]
    if status_of(answer) == 200:
        assert entries[0].after == {"status": "cancelled", "reason": "改期检查"}
    else:
        assert_error(answer, 409, "invalid_transition")


def _two_days_on() -> str:
    return (datetime.now(UTC) + timedelta(days=2)).isoformat()
