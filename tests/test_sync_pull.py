"""Pull: the caller's scope, in commit order, page by page, never missing a change."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from fieldapp.actor import Actor
from fieldapp.auth.models import User
from fieldapp.auth.policy import Policy
from fieldapp.db import db
from fieldapp.inspections.models import Inspection
from fieldapp.tasks.models import Task
from sync import pull
from tests.conftest import PASSWORD, other_district, square
from tests.review_helpers import push_inspection, review_ok
from tests.sync_helpers import FakeDevice, new_inspection, photo_metadata


def ids(changes, entity):
    return {c["id"] for c in changes if c["entity"] == entity}


def test_first_pull_brings_the_squadron_and_nothing_else(login, world):
    changes = FakeDevice(login("officer1")).pull_all()
    assert ids(changes, "target") == {
        str(world.targets["shop1"].id),
        str(world.targets["site1"].id),
    }
    assert ids(changes, "checklist") == {str(c.id) for c in world.checklists.values()}
    assert ids(changes, "user") == {
        str(world.users[n].id) for n in ("leader1", "officer1", "officer2")
    }
    [checklist] = [c for c in changes if c["entity"] == "checklist" and c["data"]["kind"] == "shop"]
    assert [i["code"] for i in checklist["data"]["items"]] == ["S01", "S02", "S03"]


def test_paging_serves_every_change_once(login, world):
    officer = FakeDevice(login("officer1"))
    created = [uuid.uuid4() for _ in range(7)]
    officer.push_ok(
        *[officer.change("inspection", i, new_inspection(world, ["officer1"])) for i in created]
    )
    leader = FakeDevice(login("leader1"))
    changes = leader.pull_all(limit=2)
    served = [(c["entity"], c["id"]) for c in changes]
    assert len(served) == len(set(served))
    assert ids(changes, "inspection") == {str(i) for i in created}
    assert leader.pull_all(limit=2) == []  # nothing new after the last cursor


def test_a_second_pull_brings_only_what_changed(login, world):
    officer, colleague = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record = uuid.uuid4()
    officer.push_ok(
        officer.change("inspection", record, new_inspection(world, ["officer1", "officer2"]))
    )
    colleague.pull_all()
    officer.push_ok(officer.change("inspection", record, {"findings": "补充说明"}, base_version=1))
    [delta] = colleague.pull_all()
    assert (delta["entity"], delta["id"], delta["version"]) == ("inspection", str(record), 2)
    assert delta["data"]["findings"] == "补充说明"


def test_other_squadrons_changes_never_reach_a_device(login, world):
    zhangmiao = FakeDevice(login("officer3"))
    zhangmiao.pull_all()
    officer = FakeDevice(login("officer1"))
    officer.push_ok(officer.change("inspection", uuid.uuid4(), new_inspection(world, ["officer1"])))
    assert zhangmiao.pull_all() == []


def task_elsewhere(app, world, target: str, username: str) -> str:
    """An open task for ``target`` assigned to ``username``, of another squadron, written
    straight to the database (a leader dispatches only the squadron's own officers; a task
    elsewhere is what remains open when a target or an officer moves). Its id."""
    with app.app_context():
        task = Task(
            target_id=world.targets[target].id,
            squadron_id=world.targets[target].squadron_id,
            origin="manual",
            due=datetime.now(UTC) + timedelta(days=2),
            note="跨中队协查",
        )
        task.assignees = [db.session.get(User, world.users[username].id)]
        db.session.add(task)
        db.session.commit()
        return str(task.id)


def test_a_task_outside_the_squadron_brings_its_target_and_its_risk(app, login, world):
    """The shop's own changes lie before the device's cursor: the task brings the shop and its
    risk record (which officer3 may read now, as GET .../risk does), just before itself."""
    zhangmiao = FakeDevice(login("officer3"))
    zhangmiao.pull_all()
    task = task_elsewhere(app, world, "shop1", "officer3")
    shop = str(world.targets["shop1"].id)
    assert zhangmiao.api.get(f"/api/v1/targets/{shop}/risk").status_code == 200

    changes = zhangmiao.pull_all()

    assert [(c["entity"], c["id"], c["op"]) for c in changes] == [
        ("target", shop, "upsert"),
        ("risk", shop, "upsert"),
        ("task", task, "upsert"),
    ]


def test_what_a_task_brings_counts_against_the_page_limit(app, login, world):
    """A page holds at most ``limit`` changes, the records a task brings included; cut among
    them, the next page goes on where it stopped, each change once."""
    devices = {limit: FakeDevice(login("officer3")) for limit in (1, 2, 3)}
    for device in devices.values():
        device.pull_all()
    task = task_elsewhere(app, world, "shop1", "officer3")
    shop = str(world.targets["shop1"].id)
    for limit, device in devices.items():
        served, has_more = [], True
        while has_more:
            page = device.api.get(f"/api/v1/sync/pull?limit={limit}&cursor={device.cursor}")
            page = page.get_json()
            assert len(page["changes"]) <= limit, (limit, page["changes"])
            served += [(c["entity"], c["id"]) for c in page["changes"]]
            device.cursor, has_more = page["cursor"], page["has_more"]
        assert served == [("target", shop), ("risk", shop), ("task", task)], limit


def test_a_cancelled_task_elsewhere_takes_its_target_off_the_device(login, world):
    """officer1's task for the shop stays open when the shop moves to Zhangmiao (and goes
    there with it): officer1 still reads the shop through the task, and their device keeps it.
    Once Zhangmiao's leader cancels the task they may no longer read the shop, and their
    device drops it and its risk record."""
    leader = login("leader1")
    shop = str(world.targets["shop1"].id)
    task = leader.post(
        "/api/v1/tasks",
        json={
            "target_id": shop,
            "assignee_ids": [str(world.users["officer1"].id)],
            "due": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
            "note": "复查",
            "origin": "manual",
        },
    )
    assert task.status_code == 201, task.get_json()
    device = FakeDevice(login("officer1"))
    device.pull_all()
    admin = login("admin")
    etag = admin.get(f"/api/v1/targets/{shop}").headers["ETag"]
    moved = admin.patch(
        f"/api/v1/targets/{shop}",
        json={"squadron_id": world.squadrons[1].id},
        headers={"If-Match": etag},
    )
    assert moved.status_code == 200, moved.get_json()
    after_move = ops(device.pull_all())
    assert after_move[("target", shop)][-1] == after_move[("risk", shop)][-1] == "upsert"

    task_id = task.get_json()["id"]

    cancelled = login("leader2").post(f"/api/v1/tasks/{task_id}/cancel", json={"reason": "撤销"})

    assert cancelled.status_code == 200, cancelled.get_json()
    assert device.api.get(f"/api/v1/targets/{shop}").status_code == 404
    assert ops(device.pull_all()) == {
        ("task", task_id): ["upsert"],
        ("target", shop): ["delete"],
        ("risk", shop): ["delete"],
    }


def test_a_target_elsewhere_stays_on_the_device_while_another_task_for_it_is_open(
    app, login, world
):
    """officer3 (Zhangmiao) has two open tasks for a Wusong shop. Approving the inspection that
    carries the first closes it; the second still shows them the shop. Cancelling that one
    takes the shop and its risk record off their device."""
    device = FakeDevice(login("officer3"))
    first = task_elsewhere(app, world, "shop1", "officer3")
    second = task_elsewhere(app, world, "shop1", "officer3")
    device.pull_all()
    shop = str(world.targets["shop1"].id)
    record = push_inspection(
        world, device, ("officer3",), task_id=first, origin="task", target="shop1"
    )
    leader = login("leader1")

    review_ok(leader, record, "approve")

    assert login("officer3").get(f"/api/v1/tasks/{first}").get_json()["status"] == "done"
    assert device.api.get(f"/api/v1/targets/{shop}").status_code == 200
    approved = ops(device.pull_all())
    assert "delete" not in approved.get(("target", shop), []) + approved.get(("risk", shop), [])

    cancelled = leader.post(f"/api/v1/tasks/{second}/cancel", json={"reason": "已复查"})

    assert cancelled.status_code == 200, cancelled.get_json()
    assert device.api.get(f"/api/v1/targets/{shop}").status_code == 404
    assert ops(device.pull_all()) == {
        ("task", second): ["upsert"],
        ("target", shop): ["delete"],
        ("risk", shop): ["delete"],
    }


def test_moving_an_officer_to_another_squadron_resets_the_device(app, login, world):
    device = FakeDevice(login("officer2"))
    device.pull_all()
    admin = login("admin")
    path = f"/api/v1/users/{world.users['officer2'].id}"
    etag = admin.get(path).headers["ETag"]
    moved = admin.patch(
        path, json={"squadron_id": world.squadrons[1].id}, headers={"If-Match": etag}
    )
    assert moved.status_code == 200, moved.get_json()
    page = device.api.get(f"/api/v1/sync/pull?cursor={device.cursor}").get_json()
    assert page["reset"] is True and page["changes"] == []
    device.cursor = None
    changes = device.pull_all()
    assert ids(changes, "target") == {str(world.targets["shop2"].id)}


def test_a_page_for_an_officer_moved_away_from_their_history_reads_what_it_serves(
    login, world, monkeypatch
):
    """officer1 did 120 inspections in Wusong and is moved to Zhangmiao; those stay theirs to
    read, the part of their scope beyond the squadron. Every page, however small, read all 120
    again: a page's cost grew with the officer's history instead of with the page (docs/sync.md:
    "limit + 1 rows at most"). Pages of 5 read a few rows each and serve each record once."""
    device = FakeDevice(login("officer1"))
    created = device.create_inspections(world, ["officer1"], 120)
    admin = login("admin")
    path = f"/api/v1/users/{world.users['officer1'].id}"
    moved = admin.patch(
        path,
        json={"squadron_id": world.squadrons[1].id},
        headers={"If-Match": admin.get(path).headers["ETag"]},
    )
    assert moved.status_code == 200, moved.get_json()
    reads, merge = [], pull._in_change_order

    def counting(parts, key, horizon):
        reads.append(sum(len(part) for part in parts))
        return merge(parts, key, horizon)

    monkeypatch.setattr(pull, "_in_change_order", counting)

    changes = FakeDevice(login("officer1", "pad-moved")).pull_all(limit=5)

    assert max(reads) <= 2 * (5 + 1), reads
    served = sorted(c["id"] for c in changes if c["entity"] == "inspection")
    assert served == sorted(str(i) for i in created)


def test_an_officer_moved_to_another_squadron_leaves_the_old_squadron_s_roster(login, world):
    """officer2 moves from Wusong to Zhangmiao: Wusong's devices drop them from the roster,
    Zhangmiao's add them, and the district's supervisor sees a removal, then the user again."""
    wusong, zhangmiao = FakeDevice(login("officer1")), FakeDevice(login("leader2"))
    supervisor = FakeDevice(login("supervisor"))
    for device in (wusong, zhangmiao, supervisor):
        device.pull_all()
    admin = login("admin")
    moved = str(world.users["officer2"].id)
    etag = admin.get(f"/api/v1/users/{moved}").headers["ETag"]

    answer = admin.patch(
        f"/api/v1/users/{moved}",
        json={"squadron_id": world.squadrons[1].id},
        headers={"If-Match": etag},
    )

    assert answer.status_code == 200, answer.get_json()
    assert login("officer1").get(f"/api/v1/users/{moved}").status_code == 404
    assert [(c["entity"], c["id"], c["op"]) for c in wusong.pull_all()] == [
        ("user", moved, "delete")
    ]
    [arrived] = zhangmiao.pull_all()
    assert (arrived["entity"], arrived["id"], arrived["op"]) == ("user", moved, "upsert")
    assert arrived["data"]["squadron_id"] == world.squadrons[1].id
    assert [c["op"] for c in supervisor.pull_all() if c["id"] == moved] == ["delete", "upsert"]


def test_an_officer_promoted_to_supervisor_leaves_the_squadron_s_roster(login, world):
    """officer1 is made a supervisor: the promotion takes them out of their squadron, and
    Wusong's devices drop them from the roster as when an officer moves to another squadron;
    the district's supervisor sees a removal, then the user again (now a supervisor)."""
    wusong, supervisor = FakeDevice(login("officer2")), FakeDevice(login("supervisor"))
    for device in (wusong, supervisor):
        device.pull_all()
    admin = login("admin")
    promoted = str(world.users["officer1"].id)
    etag = admin.get(f"/api/v1/users/{promoted}").headers["ETag"]

    answer = admin.patch(
        f"/api/v1/users/{promoted}", json={"role": "supervisor"}, headers={"If-Match": etag}
    )

    assert answer.status_code == 200, answer.get_json()
    assert [(c["entity"], c["id"], c["op"]) for c in wusong.pull_all()] == [
        ("user", promoted, "delete")
    ]
    seen = [c for c in supervisor.pull_all() if c["id"] == promoted]
    assert [c["op"] for c in seen] == ["delete", "upsert"]
    assert (seen[1]["data"]["role"], seen[1]["data"]["squadron_id"]) == ("supervisor", None)


def test_a_supervisor_moved_to_another_district_leaves_the_old_district_s_devices(
    app, login, world
):
    """A supervisor belongs to no squadron, so no squadron's removal tells the old district's
    other supervisors that they moved: each gets a removal of their own. The moved supervisor's
    device starts again (its scope changed)."""
    district_id, _ = other_district(app)
    admin = login("admin")
    added = admin.post(
        "/api/v1/users",
        json={
            "username": "supervisor2",
            "name": "王芳",
            "role": "supervisor",
            "password": PASSWORD,
        },
    )
    assert added.status_code == 201, added.get_json()
    colleague, moving = FakeDevice(login("supervisor2")), FakeDevice(login("supervisor"))
    for device in (colleague, moving):
        device.pull_all()
    moved = str(world.users["supervisor"].id)
    etag = admin.get(f"/api/v1/users/{moved}").headers["ETag"]

    answer = admin.patch(
        f"/api/v1/users/{moved}", json={"district_id": district_id}, headers={"If-Match": etag}
    )

    assert answer.status_code == 200, answer.get_json()
    assert [(c["entity"], c["id"], c["op"]) for c in colleague.pull_all()] == [
        ("user", moved, "delete")
    ]
    page = moving.api.get(f"/api/v1/sync/pull?cursor={moving.cursor}").get_json()
    assert page["reset"] is True


def test_a_target_moved_to_another_squadron_leaves_the_old_squadrons_devices(login, world):
    wusong, zhangmiao = FakeDevice(login("officer1")), FakeDevice(login("officer3"))
    wusong.pull_all()
    zhangmiao.pull_all()
    admin = login("admin")
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    etag = admin.get(path).headers["ETag"]
    moved = admin.patch(
        path, json={"squadron_id": world.squadrons[1].id}, headers={"If-Match": etag}
    )
    assert moved.status_code == 200
    shop = str(world.targets["shop1"].id)
    # The target and its risk record leave the old squadron's devices, and reach the new one's.
    assert sorted((c["entity"], c["id"], c["op"]) for c in wusong.pull_all()) == [
        ("risk", shop, "delete"),
        ("target", shop, "delete"),
    ]
    arrived = {c["entity"]: c for c in zhangmiao.pull_all()}
    assert {e: c["op"] for e, c in arrived.items()} == {"target": "upsert", "risk": "upsert"}
    assert arrived["target"]["data"]["squadron_id"] == world.squadrons[1].id
    assert arrived["risk"]["data"]["target_id"] == shop
    # The supervisor sees the whole district: a removal, then the record again, in that order.
    supervisor = FakeDevice(login("supervisor"))
    ops = [c["op"] for c in supervisor.pull_all() if (c["entity"], c["id"]) == ("target", shop)]
    assert ops == ["delete", "upsert"]


def test_a_target_moved_twice_still_leaves_the_first_squadrons_devices(login, world):
    wusong, zhangmiao = FakeDevice(login("officer1")), FakeDevice(login("officer3"))
    wusong.pull_all()
    zhangmiao.pull_all()
    admin = login("admin")
    third = admin.post(
        "/api/v1/squadrons",
        json={
            "name": "淞南中队",
            "district_id": world.district.id,
            "jurisdiction": square(121.5, 31.3),
        },
    )
    assert third.status_code == 201, third.get_json()
    shop = str(world.targets["shop1"].id)
    for squadron_id in (world.squadrons[1].id, third.get_json()["id"]):
        etag = admin.get(f"/api/v1/targets/{shop}").headers["ETag"]
        moved = admin.patch(
            f"/api/v1/targets/{shop}", json={"squadron_id": squadron_id}, headers={"If-Match": etag}
        )
        assert moved.status_code == 200, moved.get_json()
    # Neither squadron it passed through keeps a copy, though both pull only now.
    for device in (wusong, zhangmiao):
        assert sorted((c["entity"], c["id"], c["op"]) for c in device.pull_all()) == [
            ("risk", shop, "delete"),
            ("target", shop, "delete"),
        ]


def test_a_co_officer_from_another_squadron_pulls_the_inspections_they_signed(login, world):
    """Zhangmiao's officer3 helped out in Wusong: their devices get those inspections and their
    photos, merged in change order with their own squadron's records, page after page, each
    change once; Wusong's other inspections stay out of their scope."""
    wusong, zhangmiao = FakeDevice(login("officer1")), FakeDevice(login("officer3"))
    helped, alone = uuid.uuid4(), uuid.uuid4()
    photo_id = uuid.uuid4()
    wusong.push_ok(
        wusong.change("inspection", helped, new_inspection(world, ["officer1", "officer3"])),
        wusong.change("inspection", alone, new_inspection(world, ["officer1"])),
    )
    own = [uuid.uuid4() for _ in range(3)]
    for record in own:
        zhangmiao.push_ok(
            zhangmiao.change(
                "inspection", record, new_inspection(world, ["officer3"], target="shop2")
            )
        )
    wusong.push_ok(
        wusong.change(
            "photo",
            photo_id,
            {
                "inspection_id": str(helped),
                "item_code": "S01",
                "taken_at": "2026-11-20T09:35:00+08:00",
                "sha256": "cd" * 32,
                "size": 2048,
                "content_type": "image/jpeg",
            },
        )
    )
    changes = zhangmiao.pull_all(limit=2)
    inspections = [c["id"] for c in changes if c["entity"] == "inspection"]
    assert inspections == [str(helped), *map(str, own)]  # change order, each once
    assert ids(changes, "photo") == {str(photo_id)}
    again = FakeDevice(login("officer3"))
    assert [c["id"] for c in again.pull_all(limit=500)] == [c["id"] for c in changes]
    assert zhangmiao.pull_all() == []
    assert login("officer3").get(f"/api/v1/inspections/{helped}").status_code == 200
    assert login("officer3").get(f"/api/v1/inspections/{alone}").status_code == 404


def test_a_co_officer_from_another_squadron_reads_the_conflicts_of_what_they_signed(login, world):
    """The same scope rule for the conflict log: officer3 (Zhangmiao) sees the conflict on the
    Wusong inspection they co-signed, and no other Wusong conflict."""
    wusong, zhangmiao = FakeDevice(login("officer1")), FakeDevice(login("officer3"))
    helped, alone = uuid.uuid4(), uuid.uuid4()
    wusong.push_ok(
        wusong.change("inspection", helped, new_inspection(world, ["officer1", "officer3"])),
        wusong.change("inspection", alone, new_inspection(world, ["officer1", "officer2"])),
    )
    colleague = FakeDevice(login("officer2"))
    # Two officers write different findings on each record from the same base: two conflicts.
    for device, record, findings in (
        (wusong, helped, "门前堆物"),
        (zhangmiao, helped, "门前堆物已清理"),
        (wusong, alone, "占道经营"),
        (colleague, alone, "已劝离"),
    ):
        device.push_ok(device.change("inspection", record, {"findings": findings}, base_version=1))
    logged = login("leader1").get("/api/v1/conflicts").get_json()["items"]
    assert {c["record_id"] for c in logged} == {str(helped), str(alone)}
    seen = login("officer3").get("/api/v1/conflicts").get_json()["items"]
    assert {c["record_id"] for c in seen} == {str(helped)}


def co_signed_with_a_photo(world, wusong: FakeDevice, zhangmiao: FakeDevice):
    """A Wusong draft officer1 wrote with officer3 (Zhangmiao) and officer2, with one photo;
    officer3's device has pulled both. Their ids."""
    record, photo = uuid.uuid4(), uuid.uuid4()
    zhangmiao.pull_all()
    wusong.push_ok(
        wusong.change(
            "inspection", record, new_inspection(world, ["officer1", "officer3", "officer2"])
        ),
        wusong.change("photo", photo, photo_metadata(record)),
    )
    assert ops(zhangmiao.pull_all()) == {
        ("inspection", str(record)): ["upsert"],
        ("photo", str(photo)): ["upsert"],
    }
    return record, photo


def ops(changes) -> dict:
    """What each record's changes did, in order, by (entity, id)."""
    done: dict = {}
    for c in changes:
        done.setdefault((c["entity"], c["id"]), []).append(c["op"])
    return done


def test_a_deleted_co_signed_inspection_leaves_the_co_officer_s_device(login, world):
    """officer3 (Zhangmiao) read the Wusong draft through their officer link, not their
    squadron: its deletion, and its photo's, still reach their device."""
    wusong, zhangmiao = FakeDevice(login("officer1")), FakeDevice(login("officer3"))
    record, photo = co_signed_with_a_photo(world, wusong, zhangmiao)

    [deleted] = wusong.push_ok(wusong.change("inspection", record, op="delete", base_version=1))

    assert deleted["status"] == "applied", deleted
    assert login("officer3").get(f"/api/v1/inspections/{record}").status_code == 404
    assert ops(zhangmiao.pull_all()) == {
        ("inspection", str(record)): ["delete"],
        ("photo", str(photo)): ["delete"],
    }


def test_a_photo_deleted_from_a_co_signed_inspection_leaves_the_co_officer_s_device(login, world):
    wusong, zhangmiao = FakeDevice(login("officer1")), FakeDevice(login("officer3"))
    _, photo = co_signed_with_a_photo(world, wusong, zhangmiao)

    [deleted] = wusong.push_ok(wusong.change("photo", photo, op="delete", base_version=1))

    assert deleted["status"] == "applied", deleted
    assert ops(zhangmiao.pull_all()) == {("photo", str(photo)): ["delete"]}


def test_a_co_officer_dropped_from_an_inspection_loses_it_and_gets_it_back_when_added(login, world):
    """Taken off the officers, officer3 (Zhangmiao) may no longer read the Wusong draft: their
    device drops it and its photo. officer2, of Wusong, dropped too, still reads it through the
    squadron and keeps it. Added back, officer3 gets both again, the photo too, although its
    own change lies behind their cursor."""
    wusong, zhangmiao = FakeDevice(login("officer1")), FakeDevice(login("officer3"))
    colleague = FakeDevice(login("officer2"))
    colleague.pull_all()
    record, photo = co_signed_with_a_photo(world, wusong, zhangmiao)
    colleague.pull_all()
    me = str(world.users["officer1"].id)

    [dropped] = wusong.push_ok(
        wusong.change("inspection", record, {"officer_ids": [me]}, base_version=1)
    )

    assert dropped["status"] == "applied", dropped
    assert login("officer3").get(f"/api/v1/inspections/{record}").status_code == 404
    assert ops(zhangmiao.pull_all()) == {
        ("inspection", str(record)): ["delete"],
        ("photo", str(photo)): ["delete"],
    }
    assert ops(colleague.pull_all()) == {("inspection", str(record)): ["upsert"]}

    officer3 = str(world.users["officer3"].id)
    [added] = wusong.push_ok(
        wusong.change("inspection", record, {"officer_ids": [me, officer3]}, base_version=2)
    )

    assert added["status"] == "applied", added
    assert ops(zhangmiao.pull_all()) == {
        ("inspection", str(record)): ["upsert"],
        ("photo", str(photo)): ["upsert"],
    }


def test_a_pull_gives_back_the_plans_it_set_aside(app, backend, world):
    """On PostgreSQL a page's queries do without bitmap scans and sorts; whatever else the
    transaction reads afterwards plans as the server is configured."""
    if backend != "postgresql":
        pytest.skip("plan settings are PostgreSQL's")
    with app.app_context():
        user = db.session.get(User, world.users["leader1"].id)
        settings = (
            "SELECT current_setting('enable_sort'), current_setting('enable_bitmapscan'),"
            " current_setting('jit')"
        )
        before = db.session.execute(sa.text(settings)).one()
        page = pull.pull(Policy(Actor(user=user)), None, 500, "secret")
        assert any(c for c in page["changes"])
        assert db.session.execute(sa.text(settings)).one() == before
        assert before[:2] == ("on", "on")
        db.session.rollback()


def test_a_page_s_parts_beyond_the_squadron_are_not_jit_compiled(app, backend, world):
    """The part of a member's scope beyond their squadron is sorted by change number (its few
    rows, found from the member's own: walking the table's change index for them read every
    row after the cursor). With sorts set aside for the page, its cost called for JIT
    compilation, which took 300 to 900 ms for a query of a millisecond."""
    if backend != "postgresql":
        pytest.skip("JIT is PostgreSQL's")
    with app.app_context():
        user = db.session.get(User, world.users["officer1"].id)
        _, beyond = pull.page_queries(
            Policy(Actor(user=user)), Inspection, Inspection.__table__.columns, 0, 500
        )
        pull._news(0, "postgresql")
        compiled = beyond.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True})
        [plan] = db.session.execute(sa.text(f"EXPLAIN (FORMAT JSON) {compiled}")).scalar()
        assert "JIT" not in plan, plan
        db.session.rollback()


def test_a_page_carrying_a_removal_is_served_though_another_request_committed_meanwhile(
    tmp_path, monkeypatch
):
    """SQLite, the embedded default: a page that carries a scope exit notes how far the pad
    was served (``sync_removals_served``) after reading it. A read that turns writer after
    another connection committed fails at once in WAL mode (SQLITE_BUSY_SNAPSHOT): every page
    that met a push committing meanwhile answered 503. The page is served and the note
    written all the same."""
    import sqlite3

    import sync.pull as pull_module
    from sync.models import RemovalsServed
    from tests.conftest import committed_world, migrated_app, move_target, sign_in

    path = tmp_path / "race.sqlite3"
    app = migrated_app(f"sqlite:///{path}", tmp_path)
    worlds = committed_world(app)
    app, world = next(worlds)
    try:
        officer = sign_in(app, "officer1", "pad-race")
        first = officer.get("/api/v1/sync/pull")
        assert first.status_code == 200, first.get_json()
        admin = sign_in(app, "admin", "desk-admin")
        move_target(admin, world.targets["shop1"].id, world.squadrons[1].id)
        note = pull_module._record_removals_served

        def another_request_commits_first(*args, **kwargs):
            other = sqlite3.connect(path, timeout=5)
            other.execute("UPDATE devices SET name = 'desk' WHERE id = 'desk-admin'")
            other.commit()
            other.close()
            return note(*args, **kwargs)

        monkeypatch.setattr(pull_module, "_record_removals_served", another_request_commits_first)
        page = officer.get(f"/api/v1/sync/pull?cursor={first.get_json()['cursor']}")

        assert page.status_code == 200, page.get_json()
        removed = {
            (c["entity"], c["id"]) for c in page.get_json()["changes"] if c["op"] == "delete"
        }
        assert ("target", str(world.targets["shop1"].id)) in removed
        with app.app_context():
            assert db.session.get(RemovalsServed, ("pad-race", world.users["officer1"].id))
    finally:
        next(worlds, None)
