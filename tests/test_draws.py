"""双随机一公开: reproducible draws of targets and officer pairs, and their public results."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldapp.db import db
from fieldapp.draws import operations as draw_ops
from fieldapp.draws.models import Draw
from fieldapp.draws.operations import roster_hash, run_draw, verify_draw
from fieldapp.inspections.models import (
    Inspection,
    InspectionStatus,
    ReviewStatus,
)
from fieldapp.risk.models import TargetRisk
from fieldapp.targets.models import Target
from sync.entities import write_officers
from tests.conftest import (
    NO_SUCH_ID,
    add_officer,
    add_shop,
    assert_error,
    etag_of,
    move_target,
    other_district,
    paused_while_edited,
    shop_payload,
    sign_in,
    status_of,
)
from tests.sync_helpers import FakeDevice

LEVELS = ("low", "medium", "elevated", "high")
RATES = {"low": 0.05, "medium": 0.2, "elevated": 0.5, "high": 1.0}


def roster(targets_per_level=(40, 10, 4, 2), officers=6, previous=None) -> dict:
    targets, n = [], 0
    for level, count in zip(LEVELS, targets_per_level, strict=True):
        for _ in range(count):
            n += 1
            targets.append(
                {
                    "id": f"{n:08d}-0000-4000-8000-000000000000",
                    "squadron_id": 1 + n % 2,
                    "level": level,
                }
            )
    return {
        "kind": "shop",
        "rates": RATES,
        "targets": targets,
        "officers": {str(s): [f"officer-{s}-{i}" for i in range(officers)] for s in (1, 2)},
        "previous_inspectors": previous or {},
    }


def test_each_level_is_drawn_at_its_rate_and_low_risk_is_never_exempt():
    drawn = run_draw(roster(), seed=42)
    counts = {level: sum(1 for d in drawn if d["level"] == level) for level in LEVELS}
    assert counts == {"low": math.ceil(0.05 * 40), "medium": 2, "elevated": 2, "high": 2}
    few = run_draw(roster(targets_per_level=(3, 0, 0, 0)), seed=1)
    assert len(few) == 1  # 5% of 3 rounds up to one: low risk is still checked


def test_a_pair_short_of_fresh_officers_is_completed_from_the_last_inspectors():
    """Three officers, two of whom inspected the target last time: the third always goes, with
    one of the other two drawn at random (双人执法), never a lone officer or no task."""
    base = roster(targets_per_level=(0, 0, 0, 2), officers=3)
    first = base["targets"][0]
    officers = base["officers"][str(first["squadron_id"])]
    base["previous_inspectors"] = {first["id"]: officers[:2]}
    partners = set()
    for seed in range(30):
        pair = next(d for d in run_draw(base, seed) if d["target_id"] == first["id"])["officer_ids"]
        assert officers[2] in pair and len(set(pair)) == 2
        partners |= set(pair) - {officers[2]}
    assert partners == set(officers[:2])  # either last inspector may be drawn


def test_a_draw_stored_before_pairs_were_completed_still_verifies():
    """A draw that gave a target no pair (every officer but one inspected it last time)
    re-runs as drawn, and says it was paired by the earlier rule."""
    frozen = roster(targets_per_level=(0, 0, 0, 2), officers=2)
    first = frozen["targets"][0]
    frozen["previous_inspectors"] = {first["id"]: frozen["officers"][str(first["squadron_id"])]}
    drawn = run_draw(frozen, seed=3, complete_pairs=False)
    assert [d["officer_ids"] for d in drawn if d["target_id"] == first["id"]] == [[]]
    stored = Draw(
        district_id=1,
        kind="shop",
        seed=3,
        rates=frozen["rates"],
        roster=frozen,
        roster_hash=roster_hash(frozen),
        targets=drawn,
    )
    assert verify_draw(stored) == {
        "roster_hash_matches": True,
        "targets_match": True,
        "paired_without_last_inspectors": True,
    }
    assert run_draw(frozen, seed=3) != drawn  # today's rule pairs it


def test_pairs_leave_out_the_previous_inspectors():
    base = roster(targets_per_level=(0, 0, 0, 2), officers=3)
    first = base["targets"][0]
    squadron = str(first["squadron_id"])
    base["previous_inspectors"] = {first["id"]: base["officers"][squadron][:1]}
    for seed in range(30):
        pair = next(d for d in run_draw(base, seed) if d["target_id"] == first["id"])["officer_ids"]
        assert base["officers"][squadron][0] not in pair and len(set(pair)) == 2


@pytest.mark.parametrize(
    ("rate", "n", "k"),
    [
        (0.07, 100, 7),  # 0.07 × 100 = 7.000000000000001 in floating point
        (0.14, 50, 7),
        (0.28, 25, 7),
        (0.55, 100, 55),
        (0.56, 25, 14),
        (0.68, 75, 51),
        (0.07, 101, 8),  # 7.07: a share of a target still rounds up
        (0.05, 3, 1),  # low risk is never exempt
        (1.0, 12, 12),
    ],
)
def test_a_level_draws_exactly_its_share_of_targets(rate, n, k):
    level_roster = roster(targets_per_level=(n, 0, 0, 0))
    level_roster["rates"] = {**RATES, "low": rate}
    assert len(run_draw(level_roster, seed=1)) == k


def test_a_draw_stored_before_exact_counts_still_verifies():
    """A draw counted in floating point (7% of 100 low-risk shops gave 8) re-runs as drawn."""
    frozen = roster(targets_per_level=(100, 0, 0, 0))
    frozen["rates"] = {**RATES, "low": 0.07}
    drawn = run_draw(frozen, seed=9, exact_counts=False)
    assert len(drawn) == 8 and len(run_draw(frozen, seed=9)) == 7
    stored = Draw(
        district_id=1,
        kind="shop",
        seed=9,
        rates=frozen["rates"],
        roster=frozen,
        roster_hash=roster_hash(frozen),
        targets=drawn,
    )
    assert verify_draw(stored) == {
        "roster_hash_matches": True,
        "targets_match": True,
        "counted_in_floating_point": True,
    }
    stored.targets = drawn[::-1]  # neither rule gives this
    assert verify_draw(stored)["targets_match"] is False


_rosters = st.builds(
    roster,
    st.tuples(*(st.integers(0, 30) for _ in LEVELS)),
    st.integers(2, 6),
)


@settings(max_examples=200, deadline=None)
@given(_rosters, st.integers(0, 2**63 - 1))
def test_the_same_seed_over_the_same_roster_repeats_exactly(frozen, seed):
    drawn = run_draw(frozen, seed)
    assert run_draw(frozen, seed) == drawn
    # A copy rebuilt from its JSON (what anyone re-running it holds) gives the same draw.
    again = json.loads(json.dumps(frozen))
    assert roster_hash(again) == roster_hash(frozen)
    assert run_draw(again, seed) == drawn
    assert len({d["target_id"] for d in drawn}) == len(drawn)
    by_id = {t["id"]: t for t in frozen["targets"]}
    for item in drawn:
        squadron_officers = frozen["officers"][str(by_id[item["target_id"]]["squadron_id"])]
        assert len(set(item["officer_ids"])) == 2 and set(item["officer_ids"]) <= set(
            squadron_officers
        )


@settings(max_examples=200, deadline=None)
@given(_rosters, st.integers(0, 2**63 - 1), st.data())
def test_every_drawn_target_gets_two_officers_fresh_ones_first(frozen, seed, data):
    """Whoever inspected a target last time, it gets two of its squadron's officers, as many of
    them as possible from those who did not."""
    for target in frozen["targets"]:
        officers = frozen["officers"][str(target["squadron_id"])]
        last = data.draw(st.lists(st.sampled_from(officers), unique=True), label=target["id"])
        if last:
            frozen["previous_inspectors"][target["id"]] = sorted(last)
    by_id = {t["id"]: t for t in frozen["targets"]}
    for item in run_draw(frozen, seed):
        officers = frozen["officers"][str(by_id[item["target_id"]]["squadron_id"])]
        last = set(frozen["previous_inspectors"].get(item["target_id"], ()))
        pair = set(item["officer_ids"])
        assert len(pair) == 2 and pair <= set(officers)
        assert len(pair - last) == min(2, len(set(officers) - last))


# -- over HTTP -----------------------------------------------------------------------------------


def more_shops(login, world, count: int) -> None:
    leader = login("leader1")
    for n in range(count):
        response = leader.post(
            "/api/v1/targets",
            json=shop_payload(
                world.squadrons[0].id, name=f"商户{n}", uscc=None, address=f"淞滨路{n}号"
            ),
        )
        assert response.status_code == 201, response.get_json()


def test_a_leader_draws_and_the_pairs_get_tasks_on_their_devices(login, world):
    more_shops(login, world, 6)
    leader = login("leader1")
    response = leader.post(
        "/api/v1/draws",
        json={"squadron_id": world.squadrons[0].id, "kind": "shop", "seed": 20261121},
    )
    assert response.status_code == 201, response.get_json()
    draw = response.get_json()
    assert draw["seed"] == 20261121 and len(draw["roster_hash"]) == 64
    assert draw["targets"] and [p["target_id"] for p in draw["officer_pairs"]] == [
        t["target_id"] for t in draw["targets"]
    ]
    officers = {str(world.users["officer1"].id), str(world.users["officer2"].id)}
    assert all(set(p["officer_ids"]) == officers for p in draw["officer_pairs"])
    # Everyone may check it: re-running the stored roster gives the same draw.
    shown = login("supervisor").get(f"/api/v1/draws/{draw['id']}").get_json()
    assert shown["verification"] == {"roster_hash_matches": True, "targets_match": True}
    # The same seed over the same roster draws the same again.
    again = leader.post(
        "/api/v1/draws",
        json={"squadron_id": world.squadrons[0].id, "kind": "shop", "seed": 20261121},
    )
    assert again.get_json()["targets"] == draw["targets"]
    assert again.get_json()["roster_hash"] == draw["roster_hash"]
    # The pair's devices pull the tasks, each naming its draw.
    pulled = [c for c in FakeDevice(login("officer1")).pull_all() if c["entity"] == "task"]
    drawn_tasks = [c["data"] for c in pulled if c["data"]["draw_id"] == draw["id"]]
    assert sorted(t["target_id"] for t in drawn_tasks) == sorted(
        t["target_id"] for t in draw["targets"]
    )
    assert all(t["origin"] == "draw" for t in drawn_tasks)


def test_every_task_a_draw_gives_has_its_own_history_in_the_audit_log(login, world):
    """As for tasks made by hand or by the schedule: the log finds each task by its id."""
    more_shops(login, world, 4)
    body = {"squadron_id": world.squadrons[0].id, "kind": "shop", "seed": 7}
    draw = login("leader1").post("/api/v1/draws", json=body).get_json()
    supervisor = login("supervisor")
    tasks = [c["data"] for c in FakeDevice(login("officer1")).pull_all() if c["entity"] == "task"]
    drawn = [t for t in tasks if t["draw_id"] == draw["id"]]
    assert drawn
    for task in drawn:
        page = supervisor.get(f"/api/v1/audit?entity=task&record_id={task['id']}").get_json()
        [entry] = page["items"]
        assert (entry["action"], entry["after"]["draw_id"]) == ("task.create", draw["id"])
        assert entry["after"]["origin"] == "draw"
        assert entry["after"]["target_id"] == task["target_id"]
    assert supervisor.get("/api/v1/audit/verify").get_json()["ok"]


def test_who_may_draw_and_see_draws(login, world):
    body = {"squadron_id": world.squadrons[0].id, "kind": "shop", "seed": 1}
    assert_error(login("leader2").post("/api/v1/draws", json=body), 403, "forbidden")
    assert_error(login("officer1").post("/api/v1/draws", json=body), 403, "forbidden")
    assert_error(
        login("leader1").post(
            "/api/v1/draws", json={"district_id": world.district.id, "kind": "shop"}
        ),
        403,
        "forbidden",
    )
    created = login("leader1").post("/api/v1/draws", json=body).get_json()
    assert_error(login("leader2").get(f"/api/v1/draws/{created['id']}"), 404, "not_found")
    assert login("officer1").get(f"/api/v1/draws/{created['id']}").status_code == 200


def test_leaders_list_their_squadrons_draws_newest_first(login, world):
    leader = login("leader1")
    first = leader.post(
        "/api/v1/draws", json={"squadron_id": world.squadrons[0].id, "kind": "shop", "seed": 1}
    ).get_json()
    second = leader.post(
        "/api/v1/draws", json={"squadron_id": world.squadrons[0].id, "kind": "site", "seed": 2}
    ).get_json()
    listed = leader.get("/api/v1/draws").get_json()["items"]
    assert [d["id"] for d in listed] == [second["id"], first["id"]]
    assert listed[1]["drawn"] == len(first["targets"]) and "roster" not in listed[1]
    assert listed[1]["roster_hash"] == first["roster_hash"]
    only_shops = leader.get("/api/v1/draws?kind=shop").get_json()["items"]
    assert [d["id"] for d in only_shops] == [first["id"]]
    # Another squadron sees none of them; the supervisor sees the district's.
    assert login("leader2").get("/api/v1/draws").get_json()["items"] == []
    assert len(login("supervisor").get("/api/v1/draws").get_json()["items"]) == 2
    for query in ("kind=boat", "squadron_id=x", "per_page=0"):
        assert_error(leader.get(f"/api/v1/draws?{query}"), 422, "validation_failed")


def test_a_district_draw_is_seen_by_the_squadrons_it_drew_from(login, world):
    officer4 = add_officer(login, world.squadrons[1].id)
    admin = login("admin")
    district = {"district_id": world.district.id, "seed": 5}
    shops = admin.post(
        "/api/v1/draws", json={**district, "kind": "shop", "rates": {"low": 1, "medium": 1}}
    )
    assert shops.status_code == 201, shops.get_json()
    shops = shops.get_json()
    assert {t["target_id"] for t in shops["targets"]} == {
        str(world.targets[k].id) for k in ("shop1", "shop2")
    }
    # Site draw: squadron 2 has no site, so nothing was drawn from it.
    sites = admin.post("/api/v1/draws", json={**district, "kind": "site"}).get_json()
    for leader, officer, seen in (
        ("leader1", "officer1", [sites["id"], shops["id"]]),
        ("leader2", "officer3", [shops["id"]]),
    ):
        for user in (leader, officer):
            api = login(user)
            assert [d["id"] for d in api.get("/api/v1/draws").get_json()["items"]] == seen
            shown = api.get(f"/api/v1/draws/{shops['id']}")
            assert shown.status_code == 200, shown.get_json()
            assert shown.get_json()["verification"]["targets_match"] is True
    assert_error(login("leader2").get(f"/api/v1/draws/{sites['id']}"), 404, "not_found")
    # A supervisor filtering by squadron finds the district draws that drew from it too.
    supervisor = login("supervisor")
    for squadron, seen in (
        (world.squadrons[0].id, [sites["id"], shops["id"]]),
        (world.squadrons[1].id, [shops["id"]]),
    ):
        listed = supervisor.get(f"/api/v1/draws?squadron_id={squadron}").get_json()["items"]
        assert [d["id"] for d in listed] == seen
    # The tasks on squadron 2's devices name a draw its officers can open.
    pulled = [c for c in FakeDevice(login("officer3")).pull_all() if c["entity"] == "task"]
    [task] = [c["data"] for c in pulled if c["data"]["draw_id"] == shops["id"]]
    assert sorted(task["assignee_ids"]) == sorted([str(world.users["officer3"].id), officer4["id"]])


def _inspected_by(app, world, target: str, officer: str) -> None:
    """A submitted, approved patrol inspection of ``target`` by ``officer`` three days ago."""
    with app.app_context():
        row = db.session.get(Target, world.targets[target].id)
        inspection = Inspection(
            target_id=row.id,
            squadron_id=row.squadron_id,
            checklist_id=world.checklists[row.kind.value].id,
            checklist_version=1,
            origin="patrol",
            started_at=datetime.now(UTC) - timedelta(days=3),
            lon=row.lon,
            lat=row.lat,
            answers={},
            outcome="compliant",
            status=InspectionStatus.submitted,
            review_status=ReviewStatus.approved,
        )
        db.session.add(inspection)
        db.session.flush()
        write_officers(inspection, [world.users[officer].id])
        db.session.commit()


def test_a_district_draw_shows_squadron_members_only_their_squadron_s_part(app, login, world):
    """Squadron 2's leader opens a district draw that gave his squadron a task: he sees his
    shop, its pair and his squadron's officers, and nothing of squadron 1's (its shop, level,
    officers, last inspectors), whose targets he may not open either. The check is of the whole
    draw, made by the server. Supervisors and admins see all of it."""
    add_officer(login, world.squadrons[1].id)
    _inspected_by(app, world, "shop1", "officer1")
    body = {"district_id": world.district.id, "kind": "shop", "seed": 5}
    made = login("admin").post("/api/v1/draws", json={**body, "rates": {"low": 1, "medium": 1}})
    assert made.status_code == 201, made.get_json()
    made = made.get_json()
    shop1, shop2 = (str(world.targets[k].id) for k in ("shop1", "shop2"))
    assert {t["target_id"] for t in made["targets"]} == {shop1, shop2}
    squadron1_officers = [str(world.users[u].id) for u in ("officer1", "officer2")]
    for members, own, other in (
        (("leader2", "officer3"), shop2, shop1),
        (("leader1", "officer1"), shop1, shop2),
    ):
        for user in members:
            api = login(user)
            shown = api.get(f"/api/v1/draws/{made['id']}").get_json()
            assert [t["target_id"] for t in shown["targets"]] == [own]
            assert [p["target_id"] for p in shown["officer_pairs"]] == [own]
            assert [t["id"] for t in shown["roster"]["targets"]] == [own]
            squadron = str(world.users[user].squadron_id)
            assert list(shown["roster"]["officers"]) == [squadron]
            assert set(shown["roster"]["previous_inspectors"]) <= {own}
            assert other not in json.dumps(shown)
            assert shown["verification"] == {"roster_hash_matches": True, "targets_match": True}
            assert shown["roster_hash"] == made["roster_hash"]
            [listed] = [d for d in api.get("/api/v1/draws").json["items"] if d["id"] == made["id"]]
            assert listed["drawn"] == 1
    leader2_sees = json.dumps(login("leader2").get(f"/api/v1/draws/{made['id']}").get_json())
    assert not any(officer in leader2_sees for officer in squadron1_officers)
    assert_error(login("leader2").get(f"/api/v1/targets/{shop1}"), 404, "not_found")
    for user in ("supervisor", "admin"):
        api = login(user)
        shown = api.get(f"/api/v1/draws/{made['id']}").get_json()
        assert shown["targets"] == made["targets"] and shown["roster"] == made["roster"]
        assert shown["roster"]["previous_inspectors"] == {shop1: [squadron1_officers[0]]}
        [listed] = [d for d in api.get("/api/v1/draws").json["items"] if d["id"] == made["id"]]
        assert listed["drawn"] == 2


def _draw_every_shop(api, seed: int, **scope) -> dict:
    """A draw of every shop in ``scope`` (``squadron_id=`` or ``district_id=``): each level's
    rate 1, so the test knows what is drawn; returns the draw."""
    body = {**scope, "kind": "shop", "seed": seed, "rates": {"low": 1, "medium": 1, "elevated": 1}}
    made = api.post("/api/v1/draws", json=body)
    assert made.status_code == 201, made.get_json()
    return made.get_json()


def test_a_squadron_draw_s_task_that_moved_with_its_shop_names_a_draw_its_new_squadron_opens(
    login, world
):
    """leader1 draws squadron 1's shops; 老王面馆 then moves to squadron 2, and its open draw
    task with it. Squadron 2 now carries out that task: its members open (and list) the draw
    the task names, and see the shop they answer for, with its pair, and nothing else of
    squadron 1's (its officers, the last inspectors)."""
    draw = _draw_every_shop(login("leader1"), 3, squadron_id=world.squadrons[0].id)
    shop1 = str(world.targets["shop1"].id)
    [item] = [t for t in draw["targets"] if t["target_id"] == shop1]
    move_target(login("admin"), shop1, world.squadrons[1].id)

    for user in ("leader2", "officer3"):
        api = login(user)
        tasks = [t for t in api.get("/api/v1/tasks").get_json()["items"] if t["target_id"] == shop1]
        if user == "leader2":
            assert [t["draw_id"] for t in tasks] == [draw["id"]]
        shown = api.get(f"/api/v1/draws/{draw['id']}")
        assert shown.status_code == 200, shown.get_json()
        shown = shown.get_json()
        assert shown["targets"] == [item]
        assert shown["officer_pairs"] == [{"target_id": shop1, "officer_ids": item["officer_ids"]}]
        assert [t["id"] for t in shown["roster"]["targets"]] == [shop1]
        assert shown["roster"]["officers"] == {} and shown["roster"]["previous_inspectors"] == {}
        assert shown["verification"]["targets_match"] is True
        [listed] = [d for d in api.get("/api/v1/draws").get_json()["items"]]
        assert (listed["id"], listed["drawn"]) == (draw["id"], 1)
    # Squadron 1 keeps its draw whole; a supervisor finds it under squadron 2 too now.
    assert (
        login("leader1").get(f"/api/v1/draws/{draw['id']}").get_json()["targets"]
        == (draw["targets"])
    )
    listed = login("supervisor").get(f"/api/v1/draws?squadron_id={world.squadrons[1].id}")
    assert [d["id"] for d in listed.get_json()["items"]] == [draw["id"]]


def test_a_draw_made_while_a_shop_is_deactivated_leaves_no_task_open_on_it(pg_app, monkeypatch):
    """leader1 draws every shop of squadron 1 while the admin deactivates one that closed down
    (停业), which cancels its open tasks. The two take turns: the shop is left out of the
    roster, or drawn and its task cancelled with the deactivation. Before, the draw read the
    roster first, and the deactivation committed before its tasks: the closed shop's task
    stood open, sending a pair to a shop no one is to visit."""
    app, world = pg_app
    leader = sign_in(app, "leader1", "pad-draw-race-leader")
    admin = sign_in(app, "admin", "pad-draw-race-admin")
    shop = add_shop(leader, world.squadrons[0].id, "竞态抽查小吃")
    path = f"/api/v1/targets/{shop}"
    deactivate = {"json": {"active": False}, "headers": {"If-Match": etag_of(admin, path)}}
    body = {
        "squadron_id": world.squadrons[0].id,
        "kind": "shop",
        "rates": {"low": 1, "medium": 1, "elevated": 1},
    }
    answers = paused_while_edited(
        monkeypatch,
        draw_ops,
        "run_draw",
        lambda: leader.post("/api/v1/draws", json=body),
        lambda: admin.patch(path, **deactivate),
    )
    assert [status_of(answers[name]) for name in ("request", "edit")] == [201, 200], answers
    still_open = admin.get(f"/api/v1/tasks?target_id={shop}&status=open").get_json()["items"]
    assert still_open == [], still_open


def test_a_district_draw_shows_a_squadron_the_moved_shop_whose_task_it_now_holds(login, world):
    """A district draw drew 老王面馆 (squadron 1) and squadron 2's shop. 老王面馆 moves to
    squadron 2 with its open draw task: squadron 2's part of the draw now shows both shops it
    answers for, with their pairs. Squadron 1, whose officers may still be on the way with the
    task, still opens the draw, and its part still shows what it drew from it."""
    add_officer(login, world.squadrons[1].id)
    admin = login("admin")
    draw = _draw_every_shop(admin, 5, district_id=world.district.id)
    shop1, shop2 = (str(world.targets[k].id) for k in ("shop1", "shop2"))
    assert {t["target_id"] for t in draw["targets"]} == {shop1, shop2}
    move_target(admin, shop1, world.squadrons[1].id)

    leader2 = login("leader2")
    held = {t["target_id"] for t in leader2.get("/api/v1/tasks").get_json()["items"]}
    assert {shop1, shop2} <= held
    shown = leader2.get(f"/api/v1/draws/{draw['id']}").get_json()
    assert shown["targets"] == draw["targets"]
    assert {t["id"] for t in shown["roster"]["targets"]} == {shop1, shop2}
    assert list(shown["roster"]["officers"]) == [str(world.squadrons[1].id)]
    [listed] = leader2.get("/api/v1/draws").get_json()["items"]
    assert listed["drawn"] == 2
    shown = login("leader1").get(f"/api/v1/draws/{draw['id']}").get_json()
    assert [t["target_id"] for t in shown["targets"]] == [shop1]


def test_a_district_of_one_squadron_still_makes_a_district_draw(app, login, world):
    """An admin draws a whole district that happens to have a single squadron: the draw, its
    refusal and its audit entry name the district that was asked for, not the squadron."""
    district_id, squadron_id = other_district(app)
    admin = login("admin")
    shop = shop_payload(squadron_id, uscc=None, location={"lon": 121.3, "lat": 31.1})
    assert admin.post("/api/v1/targets", json=shop).status_code == 201
    add_officer(login, squadron_id, "officer5")
    body = {"district_id": district_id, "kind": "shop"}
    short = assert_error(admin.post("/api/v1/draws", json=body), 422, "validation_failed")
    assert list(short["errors"]["json"]) == ["district_id"]  # the field that was sent
    add_officer(login, squadron_id, "officer6")
    response = admin.post("/api/v1/draws", json=body)
    assert response.status_code == 201, response.get_json()
    draw = response.get_json()
    assert (draw["district_id"], draw["squadron_id"]) == (district_id, None)
    [entry] = admin.get(f"/api/v1/audit?entity=draw&record_id={draw['id']}").get_json()["items"]
    assert entry["action"] == "draw.create"
    assert (entry["after"]["district_id"], entry["after"]["squadron_id"]) == (district_id, None)
    # A squadron's draw keeps naming its squadron.
    own = login("leader1").post(
        "/api/v1/draws", json={"squadron_id": world.squadrons[0].id, "kind": "shop"}
    )
    assert own.get_json()["squadron_id"] == world.squadrons[0].id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "shop", "rates": {"extreme": 0.5}}, "rates"),
        ({"kind": "shop", "rates": {"low": 1.5}}, "rates"),
        ({"kind": "shop", "rates": {"low": -0.1}}, "rates"),
        ({"kind": "shop", "rates": {"low": "half"}}, "rates"),
        ({"kind": "shop", "rates": {"low": 0}}, "rates"),
        ({"kind": "shop", "rates": {"high": 0}}, "rates"),
        ({"kind": "shop", "rates": {"low": 0.1, "high": 0.5}}, "rates"),
        ({"kind": "shop", "seed": "abc"}, "seed"),
        ({"kind": "shop", "seed": 1.5}, "seed"),
        ({"kind": "shop", "seed": -1}, "seed"),
        ({"kind": "boat"}, "kind"),
        ({}, "kind"),
    ],
)
def test_bad_draws_are_refused_field_by_field(login, world, body, field):
    body = {"squadron_id": world.squadrons[0].id, **body}
    error = assert_error(
        login("leader1").post("/api/v1/draws", json=body), 422, "validation_failed"
    )
    assert field in error["errors"]["json"], error


def test_a_district_draw_needs_pairs_only_where_it_may_draw(app, login, world):
    """Squadron 2 (张庙中队) has one officer, one shop and no site."""
    admin = login("admin")
    district = {"district_id": world.district.id}
    # Nothing to draw there: no pair needed, the district's site is drawn.
    sites = admin.post("/api/v1/draws", json={**district, "kind": "site", "seed": 3})
    assert sites.status_code == 201, sites.get_json()
    assert [t["target_id"] for t in sites.get_json()["targets"]] == [str(world.targets["site1"].id)]
    # Its shop may be drawn and could not be paired: refused, naming the squadron, whatever
    # the seed would have picked.
    for seed in (1, 2, 3):
        shops = admin.post("/api/v1/draws", json={**district, "kind": "shop", "seed": seed})
        error = assert_error(shops, 422, "validation_failed")
        [why] = error["errors"]["json"]["district_id"]
        assert "张庙中队" in why and "1 active officer" in why and "张庙中队" in error["message"]
        assert "吴淞中队" not in why
    # Its shop at a level the draw takes none of: nothing to draw there either.
    _set_level(app, world.targets["shop2"].id, "medium")
    _set_level(app, world.targets["shop1"].id, "low")
    medium_spared = admin.post(
        "/api/v1/draws", json={**district, "kind": "shop", "rates": {"low": 1, "medium": 0}}
    )
    assert medium_spared.status_code == 201, medium_spared.get_json()
    assert [t["target_id"] for t in medium_spared.get_json()["targets"]] == [
        str(world.targets["shop1"].id)
    ]
    # With a second officer, squadron 2's shop is drawn and paired like any other.
    add_officer(login, world.squadrons[1].id)
    both = admin.post("/api/v1/draws", json={**district, "kind": "shop", "rates": {"medium": 1}})
    assert both.status_code == 201, both.get_json()
    pairs = {p["target_id"]: p["officer_ids"] for p in both.get_json()["officer_pairs"]}
    assert len(pairs[str(world.targets["shop2"].id)]) == 2


def _set_level(app, target_id, level: str) -> None:
    with app.app_context():
        risk = db.session.get(TargetRisk, target_id)
        risk.level = level
        db.session.commit()


def test_high_risk_takes_no_rate_and_is_always_drawn(app, login, world):
    _set_level(app, world.targets["shop1"].id, "high")
    leader = login("leader1")
    body = {"squadron_id": world.squadrons[0].id, "kind": "shop"}
    refused = leader.post("/api/v1/draws", json={**body, "rates": {"high": 0}})
    error = assert_error(refused, 422, "validation_failed")
    assert error["errors"]["json"] == {
        "rates": {"high": ["high risk is always drawn entirely; it takes no rate"]}
    }
    # Rates for the other levels as low as they go: the high-risk shop is drawn all the same.
    drawn = leader.post(
        "/api/v1/draws", json={**body, "rates": {"low": 0.01, "medium": 0, "elevated": 0}}
    )
    assert drawn.status_code == 201, drawn.get_json()
    assert [(t["target_id"], t["level"]) for t in drawn.get_json()["targets"]] == [
        (str(world.targets["shop1"].id), "high")
    ]
    assert drawn.get_json()["rates"]["high"] == 1.0


def test_a_draw_needs_a_scope_a_roster_and_two_officers(login, world):
    leader, admin = login("leader1"), login("admin")
    both = {"squadron_id": world.squadrons[0].id, "district_id": world.district.id, "kind": "shop"}
    assert (
        "squadron_id"
        in assert_error(admin.post("/api/v1/draws", json=both), 422, "validation_failed")["errors"][
            "json"
        ]
    )
    assert_error(admin.post("/api/v1/draws", json={"kind": "shop"}), 422, "validation_failed")
    # Squadron 2 has no site at all, and only one officer.
    empty = admin.post("/api/v1/draws", json={"squadron_id": world.squadrons[1].id, "kind": "site"})
    assert "kind" in assert_error(empty, 422, "validation_failed")["errors"]["json"]
    lonely = admin.post(
        "/api/v1/draws", json={"squadron_id": world.squadrons[1].id, "kind": "shop"}
    )
    assert "squadron_id" in assert_error(lonely, 422, "validation_failed")["errors"]["json"]
    missing = admin.post("/api/v1/draws", json={"squadron_id": NO_SUCH_ID, "kind": "shop"})
    assert_error(missing, 422, "validation_failed")
    assert (
        leader.post(
            "/api/v1/draws", json={"squadron_id": world.squadrons[0].id, "kind": "site"}
        ).status_code
        == 201
    )


def test_the_last_inspectors_of_a_target_are_not_drawn_to_inspect_it_again(app, login, world):
    _inspected_by(app, world, "shop1", "officer1")
    response = login("leader1").post(
        "/api/v1/draws",
        json={
            "squadron_id": world.squadrons[0].id,
            "kind": "shop",
            "rates": {"low": 1, "medium": 1},
        },
    )
    draw = response.get_json()
    [item] = [t for t in draw["targets"] if t["target_id"] == str(world.targets["shop1"].id)]
    assert draw["roster"]["previous_inspectors"][item["target_id"]] == [
        str(world.users["officer1"].id)
    ]
    # Only officer2 is left for shop1, so the pair is completed from its last inspectors: two
    # officers still go, and the draw's task reaches them without the leader stepping in.
    officer1, officer2 = (str(world.users[name].id) for name in ("officer1", "officer2"))
    assert item["officer_ids"] == sorted([officer1, officer2])
    tasks = login("officer2").get(f"/api/v1/tasks?target_id={item['target_id']}").get_json()
    [task] = [t for t in tasks["items"] if t["draw_id"] == draw["id"]]
    assert sorted(task["assignee_ids"]) == item["officer_ids"]


def test_a_draw_knows_the_last_inspectors_of_an_inspection_from_a_pad_whose_clock_runs_ahead(
    login, world
):
    """officer1 and officer2 inspect 老王面馆 on a pad whose clock runs five minutes ahead and
    submit at once: its start is in the server's future. A draw made right after still knows
    them as the shop's last inspectors (the inspection counts from its arrival, as for risk),
    so the pair it sends is not the same two again (双随机)."""
    from tests.review_helpers import push_inspection

    officer4 = add_officer(login, world.squadrons[0].id)
    ahead = datetime.now(UTC) + timedelta(minutes=5)
    push_inspection(
        world,
        FakeDevice(login("officer1")),
        started_at=ahead.isoformat(),
        ended_at=(ahead + timedelta(minutes=1)).isoformat(),
    )
    made = _draw_every_shop(login("leader1"), 11, squadron_id=world.squadrons[0].id)
    shop1 = str(world.targets["shop1"].id)
    last = sorted(str(world.users[u].id) for u in ("officer1", "officer2"))
    assert made["roster"]["previous_inspectors"][shop1] == last
    [item] = [t for t in made["targets"] if t["target_id"] == shop1]
    assert officer4["id"] in item["officer_ids"] and item["officer_ids"] != last


# -- 一公开 --------------------------------------------------------------------------------------


def test_public_results_show_drawn_approved_inspections_without_personal_data(
    app, client, login, world
):
    draw = (
        login("leader1")
        .post(
            "/api/v1/draws", json={"squadron_id": world.squadrons[0].id, "kind": "shop", "seed": 7}
        )
        .get_json()
    )
    with app.app_context():
        # Drawn on 1 November, before its inspections: one begun before its draw is no result.
        db.session.get(Draw, uuid.UUID(draw["id"])).created_at = datetime(2026, 11, 1, tzinfo=UTC)
        target = db.session.get(Target, world.targets["shop1"].id)
        for origin, draw_id, review in (
            ("random", uuid.UUID(draw["id"]), ReviewStatus.approved),
            ("random", uuid.UUID(draw["id"]), ReviewStatus.pending),
            ("patrol", None, ReviewStatus.approved),
            ("random", uuid.uuid4(), ReviewStatus.approved),  # names no draw: not published
        ):
            db.session.add(
                Inspection(
                    target_id=target.id,
                    squadron_id=target.squadron_id,
                    checklist_id=world.checklists["shop"].id,
                    checklist_version=1,
                    origin=origin,
                    draw_id=draw_id,
                    started_at=datetime(2026, 11, 2, 17, tzinfo=UTC),  # 3 November in Shanghai
                    lon=target.lon,
                    lat=target.lat,
                    answers={},
                    outcome="compliant",
                    status=InspectionStatus.submitted,
                    review_status=review,
                    created_by_id=world.users["officer1"].id,
                    device_id="dev-officer1",
                )
            )
        db.session.commit()
    response = client.get("/api/v1/public/inspections")  # no token
    assert response.status_code == 200
    [item] = response.get_json()["items"]
    assert item == {
        "target_name": "老王面馆",
        "target_code": world.targets["shop1"].code,
        "kind": "shop",
        "address": "淞滨路100号",
        "date": "2026-11-03",
        "result": "compliant",
        "draw_id": draw["id"],
    }
    text = response.get_data(as_text=True)
    for personal in (str(world.users["officer1"].id), "dev-officer1", "officer"):
        assert personal not in text
    assert client.get("/api/v1/public/inspections?from=2026-11-04").get_json()["items"] == []
    assert (
        len(client.get("/api/v1/public/inspections?to=2026-11-03&kind=shop").get_json()["items"])
        == 1
    )
    assert_error(client.get("/api/v1/public/inspections?from=yesterday"), 422, "validation_failed")
    # The same forms as /inspections: a time with its offset too (started 01:00 in Shanghai),
    # and from after to is refused on to.
    public = "/api/v1/public/inspections"
    assert (
        len(client.get(public, query_string={"from": "2026-11-03T01:00:00+08:00"}).json["items"])
        == 1
    )
    assert (
        client.get(public, query_string={"from": "2026-11-03T01:00:01+08:00"}).json["items"] == []
    )
    late = client.get(f"{public}?from=2026-11-04&to=2026-11-03")
    assert assert_error(late, 422, "validation_failed")["errors"]["query"] == {
        "to": ["must be after from"]
    }
    assert_error(client.get("/api/v1/public/inspections?kind=boat"), 422, "validation_failed")


def _drawn_inspection(app, world, draw_id: str, started_at: datetime) -> None:
    """An approved inspection of shop1 for draw ``draw_id``, begun at ``started_at``."""
    with app.app_context():
        target = db.session.get(Target, world.targets["shop1"].id)
        db.session.add(
            Inspection(
                target_id=target.id,
                squadron_id=target.squadron_id,
                checklist_id=world.checklists["shop"].id,
                checklist_version=1,
                origin="random",
                draw_id=uuid.UUID(draw_id),
                started_at=started_at,
                lon=target.lon,
                lat=target.lat,
                answers={},
                outcome="compliant",
                status=InspectionStatus.submitted,
                review_status=ReviewStatus.approved,
            )
        )
        db.session.commit()


def test_an_inspection_begun_before_its_draw_is_not_published_as_its_result(
    app, client, login, world
):
    """Its device names the draw, and the draw did send someone to that shop, but the inspection
    was under way (or done) before the draw was made: the public page leaves it out. A device
    whose clock runs up to a minute behind the server's is allowed for."""
    body = {"squadron_id": world.squadrons[0].id, "kind": "shop", "rates": {"low": 1, "medium": 1}}
    draw = login("leader1").post("/api/v1/draws", json=body).get_json()
    drawn_at = datetime.fromisoformat(draw["created_at"])
    for before in (timedelta(days=30), timedelta(minutes=2)):
        _drawn_inspection(app, world, draw["id"], drawn_at - before)
    assert client.get("/api/v1/public/inspections").get_json()["items"] == []
    _drawn_inspection(app, world, draw["id"], drawn_at - timedelta(seconds=30))  # clock behind
    _drawn_inspection(app, world, draw["id"], drawn_at + timedelta(hours=2))
    listed = client.get("/api/v1/public/inspections").get_json()["items"]
    assert [item["draw_id"] for item in listed] == [draw["id"]] * 2
