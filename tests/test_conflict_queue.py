"""The leaders' conflict queue: open amendments first, then deletes, then field conflicts, each
oldest first; filtered by kind, officer, target and time; paged; resolved one by one; each
entry in the queue of the squadron its record is in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from tests.conftest import assert_error, audit_entries, move_target
from tests.review_helpers import push_inspection, review_ok
from tests.sync_helpers import FakeDevice

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


@pytest.fixture
def logged(login, world):
    """One conflict of each kind, logged an hour apart: field, then delete, then amendment."""
    with time_machine.travel(T0, tick=False) as clock:
        officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
        shared = push_inspection(world, officer1, status="draft")
        officer1.push_ok(officer1.change("inspection", shared, {"findings": "甲"}, base_version=1))
        [field] = officer2.push_ok(
            officer2.change("inspection", shared, {"findings": "乙"}, base_version=1)
        )
        clock.shift(timedelta(hours=1))
        submitted = push_inspection(world, officer1)
        [delete] = officer1.push_ok(
            officer1.change("inspection", submitted, op="delete", base_version=1)
        )
        clock.shift(timedelta(hours=1))
        approved = push_inspection(world, officer1, target="site1", officers=("officer1",))
        review_ok(login("leader1"), approved, "approve")
        [amendment] = officer1.push_ok(
            officer1.change("inspection", approved, {"findings": "补记"}, base_version=2)
        )
    return {
        name: result["conflicts"][0]["conflict_id"]
        for name, result in (("field", field), ("delete", delete), ("amendment", amendment))
    }


def ids(api, query: str = "") -> list[str]:
    response = api.get(f"/api/v1/conflicts?{query}")
    assert response.status_code == 200, response.get_json()
    return [c["id"] for c in response.get_json()["items"]]


def test_the_queue_puts_amendments_first_then_deletes_then_fields(login, world, logged):
    leader = login("leader1")
    assert ids(leader) == [logged["amendment"], logged["delete"], logged["field"]]
    assert ids(leader, "order=oldest") == [logged["field"], logged["delete"], logged["amendment"]]
    assert ids(leader, "order=newest") == [logged["amendment"], logged["delete"], logged["field"]]
    [first] = leader.get("/api/v1/conflicts").get_json()["items"][:1]
    assert first["kind"] == "amendment" and first["client_value"] == {"findings": "补记"}
    assert ids(login("leader2")) == []


def test_the_queue_filters(login, world, logged):
    leader = login("leader1")
    assert ids(leader, "kind=field") == [logged["field"]]
    assert ids(leader, f"officer_id={world.users['officer2'].id}") == [logged["field"]]
    assert ids(leader, f"target_id={world.targets['site1'].id}") == [logged["amendment"]]
    assert ids(leader, f"target_id={world.targets['shop1'].id}") == [
        logged["delete"],
        logged["field"],
    ]
    one_hour = (T0 + timedelta(hours=1)).isoformat().replace("+", "%2B")
    assert ids(leader, f"from={one_hour}") == [logged["amendment"], logged["delete"]]
    assert ids(leader, f"to={one_hour}") == [logged["field"]]
    assert len(ids(leader, "from=2026-11-20&to=2026-11-20")) == 3  # Shanghai days, to included
    assert ids(leader, "to=2026-11-19") == []
    assert ids(leader, "entity=photo") == []
    page = leader.get("/api/v1/conflicts?per_page=2").get_json()
    assert [c["id"] for c in page["items"]] == [logged["amendment"], logged["delete"]]
    assert page["has_more"] is True
    page = leader.get("/api/v1/conflicts?per_page=2&page=2").get_json()
    assert [c["id"] for c in page["items"]] == [logged["field"]] and page["has_more"] is False


def test_resolved_entries_leave_the_front_of_the_queue(login, world, logged):
    leader = login("leader1")
    response = leader.post(
        f"/api/v1/conflicts/{logged['amendment']}/resolve", json={"keep": "server"}
    )
    assert response.status_code == 200
    assert ids(leader) == [logged["delete"], logged["field"], logged["amendment"]]
    assert ids(leader, "status=open") == [logged["delete"], logged["field"]]
    assert ids(leader, "status=resolved") == [logged["amendment"]]


def test_officers_read_the_queue_but_leaders_settle_it(login, world, logged):
    officer = login("officer2")
    assert ids(officer) == [logged["amendment"], logged["delete"], logged["field"]]
    response = officer.post(f"/api/v1/conflicts/{logged['field']}/resolve", json={"keep": "server"})
    assert_error(response, 403, "forbidden")
    assert ids(login("leader1"), "status=open")[-1] == logged["field"]


@pytest.mark.parametrize(
    "query",
    [
        "kind=other",
        "order=random",
        "entity=task",
        "from=yesterday",
        "from=2026-11-20T10:00:00",
        "from=2026-11-21T00:00:00Z&to=2026-11-20T00:00:00Z",
        "officer_id=me",
        "target_id=1",
    ],
)
def test_bad_queue_queries_are_422(login, world, query):
    assert_error(login("leader1").get(f"/api/v1/conflicts?{query}"), 422, "validation_failed")


def move_to_squadron(login, world, target: str, squadron_index: int) -> None:
    """An admin moves the target to another squadron (PATCH with its ETag)."""
    move_target(login("admin"), world.targets[target].id, world.squadrons[squadron_index].id)


def name_conflict(first: FakeDevice, second: FakeDevice, shop, field: str, mine, theirs) -> str:
    """Both officers correct ``field`` of the shop from version 1; the entry logged."""
    first.push_ok(first.change("target", shop, {field: mine}, base_version=1))
    [result] = second.push_ok(second.change("target", shop, {field: theirs}, base_version=1))
    assert result["status"] == "conflict", result
    return result["conflicts"][0]["conflict_id"]


def test_a_target_s_open_conflicts_follow_it_to_its_new_squadron(app, login, world):
    """After shop1 moves to Zhangmiao its open entry is leader2's to settle and leader1 may no
    longer write the shop through it (403); the entry leader1 settled before stays in
    Wusong's history."""
    first, second = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    shop = world.targets["shop1"].id
    settled = name_conflict(first, second, shop, "name", "老王面馆(总店)", "王记面馆")
    leader1 = login("leader1")
    closed = leader1.post(f"/api/v1/conflicts/{settled}/resolve", json={"keep": "server"})
    assert closed.status_code == 200, closed.get_json()
    waiting = name_conflict(first, second, shop, "address", "淞滨路14号", "淞滨路14号底层")

    move_to_squadron(login, world, "shop1", 1)

    leader2 = login("leader2")
    assert ids(leader2, f"record_id={shop}") == [waiting]
    assert ids(leader1, f"record_id={shop}") == [settled]
    refused = leader1.post(
        f"/api/v1/conflicts/{waiting}/resolve",
        json={"keep": "value", "value": "吴淞中队改的地址"},
    )
    assert_error(refused, 403, "forbidden")
    assert leader2.get(f"/api/v1/targets/{shop}").get_json()["address"] != "吴淞中队改的地址"
    resolved = leader2.post(
        f"/api/v1/conflicts/{waiting}/resolve", json={"keep": "value", "value": "张庙路1号"}
    )
    assert resolved.status_code == 200, resolved.get_json()
    assert leader2.get(f"/api/v1/targets/{shop}").get_json()["address"] == "张庙路1号"
    [moved] = audit_entries(app, action="conflict.move")
    assert (str(moved.record_id), moved.before, moved.after) == (
        waiting,
        {"squadron_id": world.squadrons[0].id},
        {"squadron_id": world.squadrons[1].id},
    )


def test_an_entry_logged_before_its_target_moved_is_settled_by_the_target_s_squadron(
    app, login, world
):
    """An entry that still names the old squadron (logged before moves took entries along) is
    settled by the squadron the target is in now: resolving writes the target."""
    from fieldapp.db import db
    from sync.models import Conflict

    first, second = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    shop = world.targets["shop1"].id
    waiting = name_conflict(first, second, shop, "name", "老王面馆(总店)", "王记面馆")
    move_to_squadron(login, world, "shop1", 1)
    with app.app_context():
        db.session.get(Conflict, uuid.UUID(waiting)).squadron_id = world.squadrons[0].id
        db.session.commit()

    # The device's later clock won; keeping the server's side writes the first name back.
    path = f"/api/v1/conflicts/{waiting}/resolve"
    assert_error(login("leader1").post(path, json={"keep": "server"}), 403, "forbidden")
    resolved = login("leader2").post(path, json={"keep": "server"})
    assert resolved.status_code == 200, resolved.get_json()
    assert login("leader2").get(f"/api/v1/targets/{shop}").get_json()["name"] == "老王面馆(总店)"
