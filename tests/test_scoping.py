"""Who sees and changes which targets: squadrons, the district, and targets of assigned tasks.

API.md: out-of-scope reads are 404 (existence is not revealed), out-of-scope writes are 403.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from fieldapp.auth.models import User
from fieldapp.db import db
from fieldapp.inspections.models import Case
from fieldapp.tasks.models import Task, TaskOrigin, TaskStatus
from tests.conftest import assert_error, etag_of, shop_payload
from tests.review_helpers import push_inspection, receive_complaint
from tests.sync_helpers import FakeDevice


def names(response) -> set[str]:
    assert response.status_code == 200, response.get_json()
    return {t["name"] for t in response.get_json()["items"]}


def assign_task(app, world, target: str, *usernames: str) -> str:
    """A leader's task naming ``target``, assigned to ``usernames``, written straight to the db."""
    row = world.targets[target]
    with app.app_context():
        task = Task(
            target_id=row.id,
            squadron_id=row.squadron_id,
            origin=TaskOrigin.complaint,
            due=datetime.now(UTC) + timedelta(days=3),
            note="12345 投诉: 核查油烟",
        )
        task.assignees = [db.session.get(User, world.users[name].id) for name in usernames]
        db.session.add(task)
        db.session.commit()
        return task.id


def set_task_status(app, task_id, status: TaskStatus) -> None:
    with app.app_context():
        db.session.get(Task, task_id).status = status
        db.session.commit()


# -- reading ----------------------------------------------------------------------------------


def test_officer_does_not_see_another_squadrons_target(login, world):
    officer3 = login("officer3")
    shop1 = world.targets["shop1"]
    assert_error(officer3.get(f"/api/v1/targets/{shop1.id}"), 404, "not_found")
    assert_error(officer3.get(f"/api/v1/targets/by-code/{shop1.code}"), 404, "not_found")
    assert names(officer3.get("/api/v1/targets")) == {"鑫隆五金店"}
    # Asking for the other squadron explicitly, or searching for the target, finds nothing.
    squadron1 = world.squadrons[0].id
    assert names(officer3.get(f"/api/v1/targets?squadron_id={squadron1}")) == set()
    assert names(officer3.get(f"/api/v1/targets?q={shop1.code}")) == set()
    assert names(officer3.get("/api/v1/targets?near=121.47,31.37,1000")) == set()


def test_the_404_for_another_squadrons_target_looks_like_a_missing_one(login, world):
    officer3 = login("officer3")
    hidden = officer3.get(f"/api/v1/targets/{world.targets['shop1'].id}").get_json()
    missing = officer3.get("/api/v1/targets/00000000-0000-4000-8000-000000000000").get_json()
    assert hidden == missing


@pytest.mark.parametrize(
    "username, expected",
    [
        ("officer1", {"老王面馆", "宝山区吴淞地区住宅项目"}),
        ("leader1", {"老王面馆", "宝山区吴淞地区住宅项目"}),
        ("officer3", {"鑫隆五金店"}),
        ("leader2", {"鑫隆五金店"}),
        ("supervisor", {"老王面馆", "宝山区吴淞地区住宅项目", "鑫隆五金店"}),
        ("admin", {"老王面馆", "宝山区吴淞地区住宅项目", "鑫隆五金店"}),
    ],
)
def test_each_role_lists_its_scope(login, world, username, expected):
    assert names(login(username).get("/api/v1/targets")) == expected


def test_supervisor_reads_both_squadrons_files(login, world):
    supervisor = login("supervisor")
    for key in ("shop1", "shop2", "site1"):
        target = world.targets[key]
        assert supervisor.get(f"/api/v1/targets/{target.id}").status_code == 200
        assert supervisor.get(f"/api/v1/targets/by-code/{target.code}").status_code == 200


# -- writing ----------------------------------------------------------------------------------


def test_supervisor_may_not_add_or_edit_targets(login, world):
    supervisor = login("supervisor")
    for squadron in world.squadrons:
        assert_error(
            supervisor.post("/api/v1/targets", json=shop_payload(squadron.id)), 403, "forbidden"
        )
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    etag = etag_of(supervisor, path)
    assert_error(
        supervisor.patch(path, json={"name": "改名"}, headers={"If-Match": etag}), 403, "forbidden"
    )
    assert supervisor.get(path).get_json()["name"] == "老王面馆"


@pytest.mark.parametrize("username", ["officer1", "officer2", "officer3"])
def test_officers_may_not_add_targets_even_in_their_squadron(login, world, username):
    officer = login(username)
    own = world.users[username].squadron_id
    assert_error(officer.post("/api/v1/targets", json=shop_payload(own)), 403, "forbidden")


def test_officer_may_not_edit_a_target_of_their_squadron(login, world):
    officer = login("officer1")
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    assert_error(
        officer.patch(path, json={"name": "改名"}, headers={"If-Match": etag_of(officer, path)}),
        403,
        "forbidden",
    )


def test_leader_may_not_add_a_target_to_another_squadron(login, world):
    leader1 = login("leader1")
    before = names(login("admin").get("/api/v1/targets"))
    response = leader1.post("/api/v1/targets", json=shop_payload(world.squadrons[1].id))
    assert_error(response, 403, "forbidden")
    assert names(login("admin").get("/api/v1/targets")) == before


def test_leader_may_not_move_a_target_to_another_squadron(login, world):
    leader1 = login("leader1")
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    etag = etag_of(leader1, path)
    response = leader1.patch(
        path,
        json={"squadron_id": world.squadrons[1].id, "name": "搬走的面馆"},
        headers={"If-Match": etag},
    )
    assert_error(response, 403, "forbidden")
    after = leader1.get(path)
    assert after.get_json()["squadron_id"] == world.squadrons[0].id
    assert after.get_json()["name"] == "老王面馆"
    assert after.headers["ETag"] == etag


def test_leader_gets_403_editing_another_squadrons_target(login, world):
    """API.md: out-of-scope reads → 404, out-of-scope writes → 403."""
    leader2 = login("leader2")
    admin = login("admin")
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    etag = etag_of(admin, path)  # even with the right ETag
    assert_error(leader2.get(path), 404, "not_found")
    assert_error(
        leader2.patch(path, json={"name": "改名"}, headers={"If-Match": etag}), 403, "forbidden"
    )
    missing = "/api/v1/targets/00000000-0000-4000-8000-000000000000"
    assert_error(
        leader2.patch(missing, json={"name": "改名"}, headers={"If-Match": etag}), 404, "not_found"
    )
    assert admin.get(path).get_json()["version"] == 1


# -- targets of tasks -------------------------------------------------------------------------


def test_an_open_task_shows_its_target_to_the_assignee_until_done(app, login, world):
    officer3 = login("officer3")
    shop1 = world.targets["shop1"]
    task_id = assign_task(app, world, "shop1", "officer3")

    assert officer3.get(f"/api/v1/targets/{shop1.id}").status_code == 200
    assert officer3.get(f"/api/v1/targets/by-code/{shop1.code}").status_code == 200
    assert names(officer3.get("/api/v1/targets")) == {"鑫隆五金店", "老王面馆"}
    # Seeing it is not owning it.
    path = f"/api/v1/targets/{shop1.id}"
    assert_error(
        officer3.patch(path, json={"name": "x"}, headers={"If-Match": etag_of(officer3, path)}),
        403,
        "forbidden",
    )

    set_task_status(app, task_id, TaskStatus.done)
    assert_error(officer3.get(f"/api/v1/targets/{shop1.id}"), 404, "not_found")
    assert_error(officer3.get(f"/api/v1/targets/by-code/{shop1.code}"), 404, "not_found")
    assert names(officer3.get("/api/v1/targets")) == {"鑫隆五金店"}


def test_a_cancelled_task_shows_nothing(app, login, world):
    task_id = assign_task(app, world, "shop1", "officer3")
    set_task_status(app, task_id, TaskStatus.cancelled)
    assert_error(
        login("officer3").get(f"/api/v1/targets/{world.targets['shop1'].id}"), 404, "not_found"
    )


def test_a_task_shows_its_target_only_to_its_assignees(app, login, world):
    assign_task(app, world, "shop1", "leader2")
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    assert_error(login("officer3").get(path), 404, "not_found")
    leader2 = login("leader2")
    assert leader2.get(path).status_code == 200
    # A leader who can see another squadron's target through a task still may not edit it.
    assert_error(
        leader2.patch(path, json={"name": "x"}, headers={"If-Match": etag_of(leader2, path)}),
        403,
        "forbidden",
    )


def test_a_task_elsewhere_shows_the_target_but_not_its_squadrons_complaints(app, login, world):
    """officer3 (squadron 2), sent to 老王面馆 (squadron 1) by a task, read squadron 1's 12345
    complaint, text and all, in the shop's file, while GET /complaints/<id> answers them 404
    (API.md: out-of-scope reads do not reveal existence). The file lists what its reader may
    read; squadron 1's leader still finds the complaint there."""
    shop = world.targets["shop1"]
    complaint_id = receive_complaint(login("leader1"), target_id=str(shop.id))
    assign_task(app, world, "shop1", "officer3")
    officer3 = login("officer3")
    file = officer3.get(f"/api/v1/targets/{shop.id}")
    assert file.status_code == 200, file.get_json()
    assert file.get_json()["complaints"] == []
    assert_error(officer3.get(f"/api/v1/complaints/{complaint_id}"), 404, "not_found")
    for reader in ("leader1", "supervisor"):
        listed = login(reader).get(f"/api/v1/targets/{shop.id}").get_json()["complaints"]
        assert [c["id"] for c in listed] == [complaint_id], reader


def test_a_task_elsewhere_shows_the_target_but_not_its_squadrons_inspections(app, login, world):
    """The same for the file's inspections, open rectifications and cases: officer3 read
    squadron 1's inspection there (outcome, failed items, the order's deadline) and its case,
    and 404 for the inspection at GET /inspections/<id>."""
    shop = world.targets["shop1"]
    inspection_id = push_inspection(
        world,
        FakeDevice(login("officer1", "pad-1")),
        outcome="rectification_ordered",
        rectification_deadline="2026-12-01",
    )
    with app.app_context():
        db.session.add(
            Case(
                number="宝城管罚〔2025〕0042号",
                target_id=shop.id,
                squadron_id=shop.squadron_id,
                inspection_id=uuid.UUID(inspection_id),
            )
        )
        db.session.commit()
    assign_task(app, world, "shop1", "officer3")
    officer3 = login("officer3")
    file = officer3.get(f"/api/v1/targets/{shop.id}").get_json()
    sections = ("recent_inspections", "open_rectifications", "cases")
    assert [file[name] for name in sections] == [[], [], []]
    assert_error(officer3.get(f"/api/v1/inspections/{inspection_id}"), 404, "not_found")
    for reader in ("leader1", "supervisor"):
        file = login(reader).get(f"/api/v1/targets/{shop.id}").get_json()
        assert [len(file[name]) for name in sections] == [1, 1, 1], (reader, file)
        assert file["recent_inspections"][0]["id"] == inspection_id


# -- other records ----------------------------------------------------------------------------


def test_officer_does_not_see_users_of_another_squadron(login, world):
    officer3 = login("officer3")
    assert_error(officer3.get(f"/api/v1/users/{world.users['officer1'].id}"), 404, "not_found")
    assert officer3.get(f"/api/v1/users/{world.users['leader2'].id}").status_code == 200


def test_officer_sees_only_own_devices(client, login, world):
    login("officer1")
    officer3 = login("officer3")
    devices = officer3.get("/api/v1/devices").get_json()["items"]
    assert [d["id"] for d in devices] == [officer3.device_id]
