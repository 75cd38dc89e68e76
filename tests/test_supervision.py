"""Supervision (督察): case-file reviews, supervision orders, and what supervisors may not do."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from fieldapp.db import db
from fieldapp.inspections.models import Case
from fieldapp.supervision import operations as supervision
from fieldapp.supervision.models import SupervisionOrder
from tests.conftest import (
    NO_SUCH_ID,
    add_shop,
    assert_error,
    audit_entries,
    etag_of,
    move_target,
    paused_while_edited,
    shop_payload,
    sign_in,
)
from tests.review_helpers import FAILED_S03, push_inspection, review_ok
from tests.sync_helpers import FakeDevice, new_inspection

REVIEWS = "/api/v1/supervision/case-reviews"
ORDERS = "/api/v1/supervision/orders"


def submitted_inspection(login, world, officer="officer1", target="shop1", status="submitted"):
    device = FakeDevice(login(officer))
    record = uuid.uuid4()
    [result] = device.push_ok(
        device.change(
            "inspection", record, new_inspection(world, [officer], status=status, target=target)
        )
    )
    assert result["status"] == "applied", result
    return str(record)


@pytest.fixture
def supervisor(login):
    return login("supervisor")


def deficient_review(inspection_id: str) -> dict:
    return {
        "inspection_id": inspection_id,
        "verdict": "deficient",
        "findings": [
            {"item_code": "S03", "text": "油烟直排未附照片"},
            {"code": "legal_basis_missing", "text": "处理结果未写法律依据"},
        ],
        "comment": "请中队整改案卷",
    }


# -- case-file reviews (案卷评查) -----------------------------------------------------------------


def test_a_supervisor_reviews_a_case_file_and_the_squadron_leader_reads_it(
    app, login, world, supervisor
):
    inspection = submitted_inspection(login, world)
    response = supervisor.post(REVIEWS, json=deficient_review(inspection))
    assert response.status_code == 201, response.get_json()
    review = response.get_json()
    assert review["verdict"] == "deficient"
    assert review["squadron_id"] == world.squadrons[0].id
    assert review["reviewer_id"] == str(world.users["supervisor"].id)
    assert review["findings"][0] == {"code": None, "item_code": "S03", "text": "油烟直排未附照片"}

    leader = login("leader1")
    assert [r["id"] for r in leader.get(REVIEWS).get_json()["items"]] == [review["id"]]
    assert leader.get(f"{REVIEWS}/{review['id']}").get_json()["comment"] == "请中队整改案卷"
    # Another squadron's leader, and officers, do not see it.
    other = login("leader2")
    assert other.get(REVIEWS).get_json()["items"] == []
    assert_error(other.get(f"{REVIEWS}/{review['id']}"), 404, "not_found")
    assert_error(login("officer1").get(f"{REVIEWS}/{review['id']}"), 404, "not_found")

    [entry] = audit_entries(app, action="case_review.record")
    assert entry.record_id == review["id"] and entry.after["verdict"] == "deficient"


def test_case_reviews_filter_by_verdict_and_inspection(login, world, supervisor):
    first = submitted_inspection(login, world)
    second = submitted_inspection(login, world)
    supervisor.post(REVIEWS, json=deficient_review(first))
    supervisor.post(REVIEWS, json={"inspection_id": second, "verdict": "compliant"})
    compliant = supervisor.get(f"{REVIEWS}?verdict=compliant").get_json()["items"]
    assert [r["inspection_id"] for r in compliant] == [second]
    mine = supervisor.get(f"{REVIEWS}?inspection_id={first}").get_json()["items"]
    assert [r["verdict"] for r in mine] == ["deficient"]


@pytest.mark.parametrize("username", ["leader1", "officer1", "admin"])
def test_only_supervisors_review_case_files(login, world, username):
    inspection = submitted_inspection(login, world)
    response = login(username).post(REVIEWS, json=deficient_review(inspection))
    assert_error(response, 403, "forbidden")


@pytest.mark.parametrize(
    "change, field",
    [
        ({"verdict": None}, "verdict"),
        ({"verdict": "excellent"}, "verdict"),
        ({"verdict": "deficient", "findings": []}, "findings"),
        ({"findings": [{"text": "没写哪一项"}]}, "findings"),
        ({"findings": [{"code": "Bad Code", "text": "x"}]}, "findings"),
        ({"findings": [{"item_code": "S03", "text": "   "}]}, "findings"),
        ({"findings": [{"item_code": "C01", "text": "工地的检查项"}]}, "findings"),
        ({"findings": [{"code": "x", "text": "t"}] * 51}, "findings"),
        ({"findings": "none"}, "findings"),
        ({"inspection_id": "not-a-uuid"}, "inspection_id"),
        ({"inspection_id": str(uuid.uuid4())}, "inspection_id"),
        ({"comment": "长" * 2001}, "comment"),
        ({"score": 3}, "score"),
    ],
)
def test_bad_case_reviews_are_422_with_the_field(login, world, supervisor, change, field):
    body = deficient_review(submitted_inspection(login, world)) | change
    body = {k: v for k, v in body.items() if v is not None}
    response = supervisor.post(REVIEWS, json=body)
    assert field in assert_error(response, 422, "validation_failed")["errors"]["json"]


def test_a_draft_has_no_case_file_to_review(login, world, supervisor):
    draft = submitted_inspection(login, world, status="draft")
    response = supervisor.post(REVIEWS, json={"inspection_id": draft, "verdict": "compliant"})
    assert "inspection_id" in assert_error(response, 422, "validation_failed")["errors"]["json"]


# -- supervisors never change inspection content --------------------------------------------------


def test_a_supervisor_cannot_edit_an_inspection_through_sync(login, world, supervisor):
    inspection = submitted_inspection(login, world)
    device = FakeDevice(supervisor)
    [result] = device.push_ok(
        device.change("inspection", inspection, {"findings": "督察改写"}, base_version=1)
    )
    assert result["status"] == "rejected"
    assert result["error"]["code"] == 403 and result["error"]["error"] == "forbidden"
    [created] = device.push_ok(
        device.change("inspection", uuid.uuid4(), new_inspection(world, ["officer1"]))
    )
    assert created["status"] == "rejected" and created["error"]["code"] == 403
    officer = login("officer1")
    page = officer.get("/api/v1/sync/pull?limit=1000").get_json()
    mine = [c for c in page["changes"] if c["id"] == inspection]
    assert mine[-1]["data"]["findings"] == "" and mine[-1]["version"] == 1


def test_a_supervisor_cannot_write_targets_or_resolve_conflicts(login, world, supervisor):
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    patch = supervisor.patch(
        path, json={"name": "督察改名"}, headers={"If-Match": etag_of(supervisor, path)}
    )
    assert_error(patch, 403, "forbidden")
    create = supervisor.post("/api/v1/targets", json=shop_payload(world.squadrons[0].id))
    assert_error(create, 403, "forbidden")
    device = FakeDevice(supervisor)
    [report] = device.push_ok(
        device.change("target", world.targets["shop1"].id, {"name": "督察改名"}, base_version=1)
    )
    assert report["status"] == "rejected" and report["error"]["code"] == 403
    assert supervisor.get(path).get_json()["name"] == "老王面馆"


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/v1/draws", {"kind": "shop"}),
        ("/api/v1/schedule/tasks", {}),
    ],
)
def test_a_supervisor_neither_draws_nor_dispatches(login, world, supervisor, path, body):
    response = supervisor.post(path, json={"squadron_id": world.squadrons[0].id, **body})
    assert_error(response, 403, "forbidden")


# -- supervision orders (督办单) ------------------------------------------------------------------


def order_body(world, inspection: str, **overrides) -> dict:
    return {
        "squadron_id": world.squadrons[0].id,
        "inspection_id": inspection,
        "text": "该商户油烟问题群众反映强烈, 请于期限内查处并回复",
        "deadline": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
        **overrides,
    }


def issue(supervisor, world, inspection, **overrides) -> dict:
    response = supervisor.post(ORDERS, json=order_body(world, inspection, **overrides))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_an_order_goes_open_answered_closed_reopened_and_every_step_is_audited(
    app, login, world, supervisor
):
    inspection = submitted_inspection(login, world)
    order = issue(supervisor, world, inspection, target_id=str(world.targets["shop1"].id))
    assert (order["status"], order["overdue"]) == ("open", False)
    leader = login("leader1")
    assert [o["id"] for o in leader.get(ORDERS).get_json()["items"]] == [order["id"]]

    path = f"{ORDERS}/{order['id']}"
    answered = leader.post(f"{path}/answer", json={"response": "已上门查处, 责令整改"})
    assert answered.status_code == 200, answered.get_json()
    body = answered.get_json()
    assert body["status"] == "answered" and body["response"] == "已上门查处, 责令整改"
    assert body["answered_by_id"] == str(world.users["leader1"].id)

    closed = supervisor.post(f"{path}/close", json={"comment": "同意"}).get_json()
    assert closed["status"] == "closed" and closed["closed_at"]
    new_deadline = (datetime.now(UTC) + timedelta(days=5)).isoformat()
    reopened = supervisor.post(
        f"{path}/reopen", json={"reason": "复查发现仍在直排", "deadline": new_deadline}
    ).get_json()
    assert reopened["status"] == "open" and reopened["closed_at"] is None
    assert datetime.fromisoformat(reopened["deadline"]) == datetime.fromisoformat(new_deadline)
    assert [e["action"] for e in reopened["history"]] == ["issue", "answer", "close", "reopen"]
    assert leader.post(f"{path}/answer", json={"response": "已再次查处"}).status_code == 200

    actions = [e.action for e in audit_entries(app, entity="supervision_order")]
    assert actions == [
        "supervision_order.issue",
        "supervision_order.answer",
        "supervision_order.close",
        "supervision_order.reopen",
        "supervision_order.answer",
    ]


def test_orders_refuse_steps_out_of_turn(login, world, supervisor):
    order = issue(supervisor, world, submitted_inspection(login, world))
    path = f"{ORDERS}/{order['id']}"
    assert_error(supervisor.post(f"{path}/close", json={}), 409, "invalid_transition")
    assert_error(supervisor.post(f"{path}/reopen", json={"reason": "x"}), 409, "invalid_transition")
    leader = login("leader1")
    leader.post(f"{path}/answer", json={"response": "已处理"})
    assert_error(
        leader.post(f"{path}/answer", json={"response": "再答"}), 409, "invalid_transition"
    )


def test_who_may_answer_close_and_read_an_order(login, world, supervisor):
    order = issue(supervisor, world, submitted_inspection(login, world))
    path = f"{ORDERS}/{order['id']}"
    # Out of scope: not read (404), not written (403, as API.md has out-of-scope writes).
    assert_error(login("leader2").post(f"{path}/answer", json={"response": "x"}), 403, "forbidden")
    assert_error(login("leader2").get(path), 404, "not_found")
    assert_error(login("officer1").get(path), 404, "not_found")
    assert_error(login("officer1").post(f"{path}/answer", json={"response": "x"}), 403, "forbidden")
    assert_error(supervisor.post(f"{path}/answer", json={"response": "x"}), 403, "forbidden")
    assert_error(login("admin").post(f"{path}/answer", json={"response": "x"}), 403, "forbidden")
    login("leader1").post(f"{path}/answer", json={"response": "已处理"})
    assert_error(login("leader1").post(f"{path}/close", json={}), 403, "forbidden")
    assert login("admin").get(path).status_code == 200
    body = order_body(world, submitted_inspection(login, world))
    assert_error(login("leader1").post(ORDERS, json=body), 403, "forbidden")


@pytest.mark.parametrize(
    "change, field",
    [
        ({"squadron_id": None}, "squadron_id"),
        ({"squadron_id": "1"}, "squadron_id"),
        ({"inspection_id": None}, "inspection_id"),
        ({"inspection_id": str(uuid.uuid4())}, "inspection_id"),
        ({"target_id": "shop2"}, "target_id"),
        ({"case_id": str(uuid.uuid4())}, "case_id"),
        ({"text": " "}, "text"),
        ({"text": "长" * 2001}, "text"),
        ({"deadline": "2026-12-01T17:00:00"}, "deadline"),
        ({"deadline": "next week"}, "deadline"),
        ({"deadline": "2020-01-01T00:00:00+08:00"}, "deadline"),
        ({"priority": "high"}, "priority"),
    ],
)
def test_bad_orders_are_422_with_the_field(login, world, supervisor, change, field):
    body = order_body(world, submitted_inspection(login, world)) | change
    if change.get("target_id") == "shop2":  # another squadron's shop
        body["target_id"] = str(world.targets["shop2"].id)
    body = {k: v for k, v in body.items() if v is not None}
    response = supervisor.post(ORDERS, json=body)
    assert field in assert_error(response, 422, "validation_failed")["errors"]["json"]


def test_an_order_about_an_inspection_and_another_target_is_refused(login, world, supervisor):
    """An order names the inspection of shop1 (老王面馆) and, as its target, site1 (the
    building site), both squadron 1's: an order about two different places is refused, 422 on
    ``target_id``, and no order is listed under either."""
    inspection = submitted_inspection(login, world)
    body = order_body(world, inspection, target_id=str(world.targets["site1"].id))
    response = supervisor.post(ORDERS, json=body)
    errors = assert_error(response, 422, "validation_failed")["errors"]["json"]
    assert errors["target_id"] == ["the inspection named is about another target"]
    assert supervisor.get(f"{ORDERS}?inspection_id={inspection}").get_json()["items"] == []


def test_an_orders_case_is_the_inspections_and_the_targets(app, login, world, supervisor):
    """A case (立案) named with an inspection must be the one that inspection opened, and one
    named with a target a case of that target; each mismatch is 422 on the field that does not
    agree. Subjects that agree make one order."""
    device = FakeDevice(login("officer1"))
    opened = push_inspection(world, device, answers=FAILED_S03, outcome="case_opened")
    review_ok(login("leader1"), opened, "approve")
    with app.app_context():
        case_id = str(
            db.session.scalar(sa.select(Case.id).where(Case.inspection_id == uuid.UUID(opened)))
        )
    other = submitted_inspection(login, world)
    response = supervisor.post(ORDERS, json=order_body(world, other, case_id=case_id))
    assert "case_id" in assert_error(response, 422, "validation_failed")["errors"]["json"]
    site = str(world.targets["site1"].id)
    body = order_body(world, None, case_id=case_id, target_id=site)
    del body["inspection_id"]
    response = supervisor.post(ORDERS, json=body)
    errors = assert_error(response, 422, "validation_failed")["errors"]["json"]
    assert errors == {"target_id": ["the case named is about another target"]}
    order = issue(
        supervisor, world, opened, case_id=case_id, target_id=str(world.targets["shop1"].id)
    )
    assert (order["inspection_id"], order["case_id"]) == (opened, case_id)


def move_shop1_to_zhangmiao(login, world) -> None:
    """An admin files shop1 under 张庙 (squadron 2) instead of 吴淞."""
    move_target(login("admin"), world.targets["shop1"].id, world.squadrons[1].id)


def issue_about(supervisor, world, **subjects) -> dict:
    """An order to 吴淞 about the subjects given (no inspection unless named)."""
    body = order_body(world, None, **subjects)
    if body["inspection_id"] is None:
        del body["inspection_id"]
    response = supervisor.post(ORDERS, json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_an_open_order_about_a_target_follows_it_to_its_new_squadron(app, login, world, supervisor):
    """An order about a shop reaches the squadron the shop is in. When the shop moves to 张庙
    (as its open complaints, tasks and conflicts do, docs/review.md), the order reaches 张庙's
    leader, who now answers for the shop; 吴淞's leader can no longer even read the shop. The
    move is audited."""
    shop = str(world.targets["shop1"].id)
    order = issue_about(supervisor, world, target_id=shop)
    move_shop1_to_zhangmiao(login, world)
    leader1, leader2 = login("leader1"), login("leader2")
    assert leader1.get(f"/api/v1/targets/{shop}").status_code == 404
    assert [o["id"] for o in leader1.get(ORDERS).get_json()["items"]] == []
    assert [o["id"] for o in leader2.get(ORDERS).get_json()["items"]] == [order["id"]]
    path = f"{ORDERS}/{order['id']}/answer"
    assert_error(leader1.post(path, json={"response": "已查处"}), 403, "forbidden")
    answered = leader2.post(path, json={"response": "已接手查处"})
    assert answered.status_code == 200, answered.get_json()
    assert answered.get_json()["squadron_id"] == world.squadrons[1].id
    [move] = audit_entries(app, action="supervision_order.move")
    assert (move.record_id, move.before, move.after) == (
        order["id"],
        {"squadron_id": world.squadrons[0].id},
        {"squadron_id": world.squadrons[1].id},
    )


def test_orders_about_a_targets_case_follow_it_those_about_an_inspection_or_answered_stay(
    app, login, world, supervisor
):
    """Only the shop's new squadron sees its cases (in the target's file), so an order about
    one follows the shop. An inspection never changes squadron: an order that names one stays
    with the squadron that made it. An answered order stays as 吴淞's history."""
    device = FakeDevice(login("officer1"))
    opened = push_inspection(world, device, answers=FAILED_S03, outcome="case_opened")
    review_ok(login("leader1"), opened, "approve")
    with app.app_context():
        case_id = str(
            db.session.scalar(sa.select(Case.id).where(Case.inspection_id == uuid.UUID(opened)))
        )
    shop = str(world.targets["shop1"].id)
    about_case = issue_about(supervisor, world, case_id=case_id)
    about_inspection = issue_about(supervisor, world, inspection_id=opened, target_id=shop)
    answered = issue_about(supervisor, world, target_id=shop)
    path = f"{ORDERS}/{answered['id']}/answer"
    assert login("leader1").post(path, json={"response": "已处理"}).status_code == 200
    move_shop1_to_zhangmiao(login, world)
    squadrons = {
        order["id"]: supervisor.get(f"{ORDERS}/{order['id']}").get_json()["squadron_id"]
        for order in (about_case, about_inspection, answered)
    }
    assert squadrons == {
        about_case["id"]: world.squadrons[1].id,
        about_inspection["id"]: world.squadrons[0].id,
        answered["id"]: world.squadrons[0].id,
    }


def test_an_order_reopened_after_its_shop_moved_reaches_the_squadron_that_answers_for_it_now(
    app, login, world, supervisor
):
    """An order about 老王面馆 is answered by 吴淞's leader; the shop then moves to 张庙 (the
    answered order stays behind, as 吴淞's history). The supervisor is not satisfied and
    reopens it: open again, it is 张庙's, whose leader now answers for the shop (吴淞's can
    no longer even read it). The move is audited and written in the order's history."""
    leader1, leader2 = login("leader1"), login("leader2")
    shop = str(world.targets["shop1"].id)
    order = issue_about(supervisor, world, target_id=shop)
    path = f"{ORDERS}/{order['id']}"
    assert leader1.post(f"{path}/answer", json={"response": "已处理"}).status_code == 200
    move_shop1_to_zhangmiao(login, world)
    assert supervisor.get(path).get_json()["squadron_id"] == world.squadrons[0].id
    reopened = supervisor.post(f"{path}/reopen", json={"reason": "仍在直排"})
    assert reopened.status_code == 200, reopened.get_json()
    assert leader1.get(f"/api/v1/targets/{shop}").status_code == 404
    assert reopened.get_json()["squadron_id"] == world.squadrons[1].id
    assert [o["id"] for o in leader2.get(ORDERS).get_json()["items"]] == [order["id"]]
    steps = [(s["action"], s["squadron_id"]) for s in reopened.get_json()["history"]]
    wusong, zhangmiao = world.squadrons[0].id, world.squadrons[1].id
    assert steps == [
        ("issue", wusong),
        ("answer", wusong),
        ("move", zhangmiao),
        ("reopen", zhangmiao),
    ]
    [move] = audit_entries(app, action="supervision_order.move")
    assert (move.record_id, move.before, move.after) == (
        order["id"],
        {"squadron_id": wusong},
        {"squadron_id": zhangmiao},
    )
    answered = leader2.post(f"{path}/answer", json={"response": "已接手查处"})
    assert answered.status_code == 200, answered.get_json()


def test_an_order_about_an_inspection_reopened_after_its_shop_moved_stays_with_its_squadron(
    login, world, supervisor
):
    """An order that names an inspection stays with the squadron that made the inspection
    (inspections never change squadron), also when it is reopened after the shop moved."""
    order = issue(supervisor, world, submitted_inspection(login, world))
    path = f"{ORDERS}/{order['id']}"
    assert login("leader1").post(f"{path}/answer", json={"response": "已处理"}).status_code == 200
    move_shop1_to_zhangmiao(login, world)
    reopened = supervisor.post(f"{path}/reopen", json={"reason": "仍在直排"})
    assert reopened.status_code == 200, reopened.get_json()
    assert reopened.get_json()["squadron_id"] == world.squadrons[0].id
    assert "move" not in [s["action"] for s in reopened.get_json()["history"]]


def test_an_order_for_an_unknown_squadron_is_refused(login, world, supervisor):
    body = order_body(world, submitted_inspection(login, world), squadron_id=NO_SUCH_ID)
    assert_error(supervisor.post(ORDERS, json=body), 403, "forbidden")


@pytest.mark.parametrize(
    "step, body, field",
    [
        ("answer", {}, "response"),
        ("answer", {"response": "  "}, "response"),
        ("answer", {"response": "好", "extra": 1}, "extra"),
        ("reopen", {}, "reason"),
        ("reopen", {"reason": "x", "deadline": "2020-01-01T00:00:00+08:00"}, "deadline"),
        ("close", {"comment": "长" * 2001}, "comment"),
    ],
)
def test_bad_order_steps_are_422_with_the_field(login, world, supervisor, step, body, field):
    order = issue(supervisor, world, submitted_inspection(login, world))
    path = f"{ORDERS}/{order['id']}"
    actor = login("leader1")
    if step != "answer":
        actor.post(f"{path}/answer", json={"response": "已处理"})
        actor = supervisor
    response = actor.post(f"{path}/{step}", json=body)
    assert field in assert_error(response, 422, "validation_failed")["errors"]["json"]


def test_overdue_orders_are_listed_on_a_frozen_clock(login, world, supervisor):
    start = datetime.now(UTC).replace(microsecond=0)
    inspection = submitted_inspection(login, world)
    leader = login("leader1")
    with time_machine.travel(start, tick=False):
        late = issue(
            supervisor, world, inspection, deadline=(start + timedelta(days=1)).isoformat()
        )
        answered = issue(
            supervisor, world, inspection, deadline=(start + timedelta(days=1)).isoformat()
        )
        later = issue(
            supervisor, world, inspection, deadline=(start + timedelta(days=9)).isoformat()
        )
        leader.post(f"{ORDERS}/{answered['id']}/answer", json={"response": "已处理"})
        assert supervisor.get(f"{ORDERS}?overdue=true").get_json()["items"] == []
    with time_machine.travel(start + timedelta(days=1, seconds=1), tick=False):
        overdue = supervisor.get(f"{ORDERS}?overdue=true").get_json()["items"]
        assert [o["id"] for o in overdue] == [late["id"]]
        assert overdue[0]["overdue"] is True
        others = supervisor.get(f"{ORDERS}?overdue=false").get_json()["items"]
        assert {o["id"] for o in others} == {answered["id"], later["id"]}
        assert leader.get(f"{ORDERS}/{later['id']}").get_json()["overdue"] is False
        # A late answer is still taken, and the order stops being overdue.
        leader.post(f"{ORDERS}/{late['id']}/answer", json={"response": "迟复: 已处理"})
        assert supervisor.get(f"{ORDERS}?overdue=true").get_json()["items"] == []


@pytest.mark.parametrize(
    "path, field",
    [
        (f"{REVIEWS}?verdict=excellent", "verdict"),
        (f"{REVIEWS}?inspection_id=42", "inspection_id"),
        (f"{REVIEWS}?from=2026-13-01", "from"),
        (f"{REVIEWS}?from=2026-11-02&to=2026-11-01", "to"),
        (f"{REVIEWS}?squadron_id=x", "squadron_id"),
        (f"{ORDERS}?status=pending", "status"),
        (f"{ORDERS}?overdue=perhaps", "overdue"),
        (f"{ORDERS}?target_id=shop1", "target_id"),
        (f"{ORDERS}?per_page=1000", "per_page"),
    ],
)
def test_bad_list_filters_are_422_with_the_field(supervisor, path, field):
    body = assert_error(supervisor.get(path), 422, "validation_failed")
    assert field in body["errors"]["query"]


def test_unknown_reviews_and_orders_are_404(supervisor):
    assert_error(supervisor.get(f"{REVIEWS}/{uuid.uuid4()}"), 404, "not_found")
    assert_error(supervisor.get(f"{ORDERS}/{uuid.uuid4()}"), 404, "not_found")
    response = supervisor.post(f"{ORDERS}/{uuid.uuid4()}/close", json={})
    assert_error(response, 404, "not_found")


def test_an_inspection_a_supervision_order_is_about_is_not_deleted(login, world, supervisor):
    """The order would be left about nothing: its officer's delete of the draft is refused for
    good, naming the order (docs/review.md, "Deleting an inspection")."""
    device = FakeDevice(login("officer1"))
    inspection = uuid.uuid4()
    device.push_ok(device.change("inspection", inspection, new_inspection(world, ["officer1"])))
    order = issue(supervisor, world, str(inspection))

    [refused] = device.push_ok(device.change("inspection", inspection, op="delete", base_version=1))

    assert (refused["status"], refused["error"]["error"]) == ("rejected", "validation_failed")
    [why] = refused["error"]["errors"]["json"]["op"]
    assert f"supervision order {order['id']} is about it" in why
    assert login("officer1").get(f"/api/v1/inspections/{inspection}").status_code == 200


def test_an_order_reopened_while_its_shop_moves_ends_with_the_shops_new_squadron(
    pg_app, monkeypatch
):
    """An order about a shop of 吴淞 is answered. The supervisor reopens it at the moment an
    admin moves the shop to 张庙. The reopen holds the change counter before it reads where
    the shop is: either the move came first and the reopen files the order with 张庙, or the
    move comes after and takes the open order along. Both used to miss each other: the order
    ended open in 吴淞, about a shop 吴淞 can no longer read."""
    app, world = pg_app
    admin = sign_in(app, "admin", "race-admin-reopen")
    supervisor = sign_in(app, "supervisor", "race-sup-reopen")
    leader1 = sign_in(app, "leader1", "race-l1-reopen")
    wusong, zhangmiao = world.squadrons[0].id, world.squadrons[1].id
    shop = add_shop(admin, wusong, "竞速面馆")
    issued = supervisor.post(
        ORDERS,
        json={
            "squadron_id": wusong,
            "target_id": shop,
            "text": "油烟直排, 请查处",
            "deadline": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
        },
    )
    assert issued.status_code == 201, issued.get_json()
    path = f"{ORDERS}/{issued.get_json()['id']}"
    assert leader1.post(f"{path}/answer", json={"response": "已处理"}).status_code == 200
    target_path = f"/api/v1/targets/{shop}"
    etag = etag_of(admin, target_path)

    answers = paused_while_edited(
        monkeypatch,
        supervision,
        "_transition",
        lambda: supervisor.post(f"{path}/reopen", json={"reason": "仍在直排"}),
        lambda: admin.patch(
            target_path, json={"squadron_id": zhangmiao}, headers={"If-Match": etag}
        ),
    )
    for name, answer in answers.items():
        assert not isinstance(answer, BaseException), (name, answer)
        assert answer.status_code == 200, (name, answer.get_json())
    with app.app_context():
        order = db.session.get(SupervisionOrder, uuid.UUID(issued.get_json()["id"]))
        assert order.status.value == "open"
        assert order.squadron_id == zhangmiao, order.history
