"""Reviews racing other writes, on PostgreSQL with real commits: two leaders reviewing one
inspection at the same moment (both pass the If-Match check, one wins, the other gets 409 and
nothing of its review is kept), and an approval racing a device's edit or a complaint's
decision (they take turns, in the one lock order of docs/sync.md: never a deadlock)."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from fieldapp.audit.models import AuditEntry
from fieldapp.db import db
from fieldapp.inspections import operations
from tests.conftest import (
    RACE_WAIT,
    Api,
    add_shop,
    at_once,
    sign_in,
    status_of,
    until_there_or_waiting,
)
from tests.review_helpers import (
    FAILED_S03,
    add_second_leader,
    complaint_task,
    inspection_path,
    push_inspection,
    receive_complaint,
)
from tests.test_sync_concurrency import device_for


def test_two_leaders_at_the_same_moment_one_wins_the_other_gets_409(pg_app, monkeypatch):
    app, world = pg_app
    add_second_leader(app, world, "deputy1")
    inspection_id = push_inspection(world, device_for(app, "officer1", "pad-race-review"))
    leaders = [sign_in(app, "leader1", "race-l1"), sign_in(app, "deputy1", "race-l2")]
    etag = leaders[0].get(inspection_path(inspection_id)).headers["ETag"]

    # Both requests wait here, after their If-Match check and before writing anything.
    both_checked = threading.Barrier(2, timeout=30)
    review = operations.review

    def review_together(*args, **kwargs):
        both_checked.wait()
        return review(*args, **kwargs)

    monkeypatch.setattr(operations, "review", review_together)
    answers: dict[str, object] = {}

    def send(api: Api, decision: str) -> None:
        try:
            answers[decision] = api.post(
                f"{inspection_path(inspection_id)}/review",
                json={"decision": decision, "comment": "并发审核"},
                headers={"If-Match": etag},
            )
        except BaseException as exc:  # surfaced by the main thread
            answers[decision] = exc

    threads = [
        threading.Thread(target=send, args=(leaders[0], "approve")),
        threading.Thread(target=send, args=(leaders[1], "return")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    statuses = sorted(answer.status_code for answer in answers.values())
    assert statuses == [200, 409], answers
    [winner] = [d for d, a in answers.items() if a.status_code == 200]
    [loser] = [a for a in answers.values() if a.status_code == 409]
    assert loser.get_json()["error"] == "version_conflict"

    record = leaders[0].get(inspection_path(inspection_id)).get_json()
    assert record["review"]["status"] == {"approve": "approved", "return": "returned"}[winner]
    assert record["version"] == 2
    with app.app_context():
        reviews = db.session.scalars(
            sa.select(AuditEntry.action).where(
                AuditEntry.record_id == inspection_id,
                AuditEntry.action.in_(["inspection.approve", "inspection.return"]),
            )
        ).all()
    assert reviews == [f"inspection.{winner}"]


# -- one lock order: the change counter first, rows after it --------------------------------------


def test_a_review_racing_a_device_edit_of_the_same_inspection_takes_turns(pg_app, monkeypatch):
    """A leader approves an inspection while an officer's device pushes an edit of it: the two
    take turns (the review first here), the edit merges after it, and neither fails.

    Before, the push locked the batch's inspections and only then took the change counter,
    while the review takes the counter first (its flush numbers the change) and then writes
    the inspection's row: each held what the other waited for, PostgreSQL found a deadlock and
    one of them answered 503 ``database_unavailable``."""
    import sync.engine
    import sync.sequence

    app, world = pg_app
    officer = device_for(app, "officer1", "pad-dl-officer")
    inspection_id = push_inspection(world, officer)
    leader = sign_in(app, "leader1", "pad-dl-leader")
    etag = leader.get(inspection_path(inspection_id)).headers["ETag"]

    pushing = threading.Event()  # the push is about to take the counter for its batch
    counted = threading.Event()  # the review holds the change counter
    reserve, take = sync.engine.reserve, sync.sequence._take

    def reserve_after_the_review(*args, **kwargs):
        if threading.current_thread().name == "push":
            pushing.set()
            counted.wait(RACE_WAIT)
        return reserve(*args, **kwargs)

    def take_and_tell(*args, **kwargs):
        taken = take(*args, **kwargs)
        if threading.current_thread().name == "review":
            counted.set()
        return taken

    monkeypatch.setattr(sync.engine, "reserve", reserve_after_the_review)
    monkeypatch.setattr(sync.sequence, "_take", take_and_tell)

    def push():
        return officer.push(
            officer.change(
                "inspection", inspection_id, {"findings": "补充: 门前堆物已清理"}, base_version=1
            )
        )

    def review():
        pushing.wait(RACE_WAIT)
        return leader.post(
            f"{inspection_path(inspection_id)}/review",
            json={"decision": "approve", "comment": "同意"},
            headers={"If-Match": etag},
        )

    answers = at_once(("push", push), ("review", review))
    monkeypatch.undo()
    statuses = {name: status_of(answer) for name, answer in answers.items()}
    assert statuses == {"push": 200, "review": 200}, answers
    [result] = answers["push"].get_json()["results"]
    # Approved meanwhile: the edit waits in the conflict log as an amendment for the leader.
    assert result["status"] == "conflict", result
    record = leader.get(inspection_path(inspection_id)).get_json()
    assert record["review"]["status"] == "approved"


def test_a_leaders_complaint_decision_is_not_overwritten_by_an_approval_at_the_same_moment(
    pg_app, monkeypatch
):
    """A 12345 complaint about a place with no registered target went out as a task; the leader
    decides it "not substantiated" while a deputy approves the task's inspection, which settles
    a complaint still open. The leader's decision stays: the approval waits for it and finds
    the complaint decided.

    Before, the approval read the complaint without a lock, found it open and wrote its own
    decision over the leader's ("substantiated", decided by the approver) once the leader's
    committed: the leader's decision was gone from the complaint."""
    from fieldapp.audit import operations as audit_ops
    from fieldapp.complaints import operations as complaint_ops

    app, world = pg_app
    leader = sign_in(app, "leader1", "pad-settle-l")
    approver = sign_in(app, "leader1", "pad-settle-a")
    officer = device_for(app, "officer1", "pad-settle-o")
    shop = add_shop(leader, world.squadrons[0].id, "聚福烧烤")
    complaint = receive_complaint(leader, squadron_id=world.squadrons[0].id)
    task = complaint_task(leader, world, shop, complaint)
    inspection_id = push_inspection(
        world, officer, target_id=shop, task_id=task, origin="task", answers=FAILED_S03
    )
    etag = approver.get(inspection_path(inspection_id)).headers["ETag"]

    decided = threading.Event()  # the leader's decision is written, not yet committed
    settling = threading.Event()  # the approval writes its decision into the complaint
    record_update, decide_complaint = audit_ops.record_update, complaint_ops.decide_complaint

    def record_update_then_wait(*args, **kwargs):
        entry = record_update(*args, **kwargs)
        if threading.current_thread().name == "decide" and args[1] == "complaint.decide":
            decided.set()
            until_there_or_waiting(settling)
        return entry

    def decide_and_tell(*args, **kwargs):
        if threading.current_thread().name == "approve":
            settling.set()
        return decide_complaint(*args, **kwargs)

    monkeypatch.setattr(audit_ops, "record_update", record_update_then_wait)
    monkeypatch.setattr(complaint_ops, "decide_complaint", decide_and_tell)

    def decide():
        return leader.post(
            f"/api/v1/complaints/{complaint}/decision",
            json={"substantiated": False, "note": "经电话回访, 投诉人反映情况不实"},
        )

    def approve():
        decided.wait(RACE_WAIT)
        return approver.post(
            f"{inspection_path(inspection_id)}/review",
            json={"decision": "approve", "comment": "同意"},
            headers={"If-Match": etag},
        )

    answers = at_once(("decide", decide), ("approve", approve))
    monkeypatch.undo()
    assert {n: status_of(a) for n, a in answers.items()} == {"decide": 200, "approve": 200}, answers
    settled = leader.get(f"/api/v1/complaints/{complaint}").get_json()
    assert (settled["substantiated"], settled["decision_note"]) == (
        False,
        "经电话回访, 投诉人反映情况不实",
    ), settled
    assert not settling.is_set()  # the approval left the decided complaint alone


def test_a_complaint_decision_racing_an_approval_of_the_same_shop_takes_turns(pg_app, monkeypatch):
    """The leader decides a complaint about a shop "substantiated" while a deputy approves an
    inspection of the same shop: both answer 200 and the shop's risk counts the complaint.

    Before, the decision locked the shop's stored assessment and then waited for the change
    counter, which the approval held while it waited for that assessment: a deadlock, and one
    of them answered 503 ``database_unavailable``."""
    from fieldapp.risk import operations as risk_ops

    app, world = pg_app
    leader = sign_in(app, "leader1", "pad-dl2-l")
    approver = sign_in(app, "leader1", "pad-dl2-a")
    officer = device_for(app, "officer1", "pad-dl2-o")
    shop = add_shop(leader, world.squadrons[0].id, "旺角茶餐厅")
    complaint = receive_complaint(leader, target_id=shop)
    inspection_id = push_inspection(world, officer, target_id=shop)
    etag = approver.get(inspection_path(inspection_id)).headers["ETag"]

    assessed = threading.Event()  # the decision holds the shop's assessment row
    approving = threading.Event()  # the approval re-assesses the shop
    write_chunk, refresh_target = risk_ops._write_chunk, risk_ops.refresh_target

    def write_when_the_approval_is_there(*args, **kwargs):
        if threading.current_thread().name == "decide":
            assessed.set()
            until_there_or_waiting(approving)
        return write_chunk(*args, **kwargs)

    def refresh_and_tell(*args, **kwargs):
        if threading.current_thread().name == "approve":
            approving.set()
        return refresh_target(*args, **kwargs)

    monkeypatch.setattr(risk_ops, "_write_chunk", write_when_the_approval_is_there)
    monkeypatch.setattr(risk_ops, "refresh_target", refresh_and_tell)

    def decide():
        return leader.post(
            f"/api/v1/complaints/{complaint}/decision",
            json={"substantiated": True, "note": "现场核实, 投诉属实"},
        )

    def approve():
        assessed.wait(RACE_WAIT)
        return approver.post(
            f"{inspection_path(inspection_id)}/review",
            json={"decision": "approve", "comment": "同意"},
            headers={"If-Match": etag},
        )

    answers = at_once(("decide", decide), ("approve", approve))
    monkeypatch.undo()
    bodies = {n: a.get_json() for n, a in answers.items() if hasattr(a, "get_json")}
    assert {n: status_of(a) for n, a in answers.items()} == {"decide": 200, "approve": 200}, bodies
    risk = leader.get(f"/api/v1/targets/{shop}/risk").get_json()
    counted = {f["source"]["id"] for f in risk["factors"] if f["factor"] == "complaints"}
    assert counted == {complaint}, risk["factors"]
