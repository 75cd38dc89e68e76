"""Rectification follow-ups (复查): open orders per squadron, oldest deadline first, overdue
on a frozen clock, and the follow-up shown on the order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import time_machine

from tests.conftest import assert_error
from tests.review_helpers import FAILED_S03, inspection_path, push_inspection, review_ok
from tests.sync_helpers import FakeDevice, new_inspection

SITE_FAILED = {"C02": {"result": "fail", "note": "裸土未覆盖", "photo_ids": []}}
NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 25 November, 10:00 in Shanghai
#: An inspection day before the earliest deadlines below (a deadline precedes no inspection).
EARLY = datetime(2026, 11, 9, 2, 0, tzinfo=UTC).isoformat()


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def order(world, device, deadline: str, **fields) -> str:
    """A submitted rectification order (责令整改) with ``deadline``."""
    site = fields.get("target", "shop1").startswith("site")
    return push_inspection(
        world,
        device,
        answers=SITE_FAILED if site else FAILED_S03,
        outcome="rectification_ordered",
        rectification_deadline=deadline,
        **fields,
    )


def follow_up(world, device, of: str, **fields) -> str:
    return push_inspection(world, device, follow_up_of=of, **fields)


def ids(api, query: str = "") -> list[str]:
    response = api.get(f"/api/v1/rectifications?{query}")
    assert response.status_code == 200, response.get_json()
    return [item["inspection_id"] for item in response.get_json()["items"]]


def test_open_orders_oldest_deadline_first_and_overdue_ones(clock, login, world):
    device = FakeDevice(login("officer1"))
    late = order(world, device, "2026-11-21")
    settled = order(world, device, "2026-11-24")
    upcoming = order(world, device, "2026-11-28", target="site1")
    earliest = order(world, device, "2026-11-18", started_at=EARLY)
    follow_up(world, device, settled)
    follow_up(world, device, earliest)
    # Orders that do not count: a draft, and one the leader returned.
    order(world, device, "2026-11-19", status="draft", started_at=EARLY, ended_at=NOW.isoformat())
    returned = order(world, device, "2026-11-20")
    leader = login("leader1")
    review_ok(leader, returned, "return", "整改期限不合理")
    # Another squadron's order is not leader1's business.
    order(
        world,
        FakeDevice(login("officer3")),
        "2026-11-10",
        officers=("officer3",),
        target="shop2",
        started_at=EARLY,
    )

    assert ids(leader) == [late, upcoming]
    assert ids(leader, "overdue=true") == [late]
    assert ids(leader, "overdue=false") == [upcoming]
    assert ids(leader, f"target_id={world.targets['site1'].id}") == [upcoming]
    [item] = leader.get("/api/v1/rectifications?overdue=true").get_json()["items"]
    assert item["deadline"] == "2026-11-21" and item["days_overdue"] == 4
    assert item["target_name"] == "老王面馆" and item["target_code"] == world.targets["shop1"].code
    assert len(ids(login("leader2"))) == 1


def test_overdue_follows_the_shanghai_calendar(clock, login, world):
    device = FakeDevice(login("officer1"))
    due_today = order(world, device, "2026-11-25")
    leader = login("leader1")
    assert ids(leader, "overdue=true") == []
    clock.move_to(datetime(2026, 11, 25, 15, 59, tzinfo=UTC))  # 23:59 in Shanghai
    assert ids(leader, "overdue=true") == []
    clock.move_to(datetime(2026, 11, 25, 16, 0, tzinfo=UTC))  # midnight in Shanghai
    assert ids(leader, "overdue=true") == [due_today]


def test_the_order_shows_its_follow_up(clock, login, world):
    device = FakeDevice(login("officer1"))
    ordered = order(world, device, "2026-11-21")
    leader = login("leader1")
    waiting = leader.get(inspection_path(ordered)).get_json()["follow_up"]
    assert waiting == {"due": "2026-11-21", "done_by": None, "done_at": None, "overdue": True}

    done = follow_up(world, device, ordered)
    shown = leader.get(inspection_path(ordered)).get_json()["follow_up"]
    assert shown["done_by"] == done and shown["overdue"] is False
    listed = leader.get(f"/api/v1/inspections?target_id={world.targets['shop1'].id}").get_json()
    by_id = {i["id"]: i for i in listed["items"]}
    assert by_id[ordered]["follow_up"]["done_by"] == done
    assert by_id[done]["follow_up"] is None  # a compliant follow-up orders nothing


def test_a_returned_follow_up_does_not_settle_the_order(clock, login, world):
    device = FakeDevice(login("officer1"))
    ordered = order(world, device, "2026-11-21")
    done = follow_up(world, device, ordered)
    leader = login("leader1")
    assert ids(leader) == []
    review_ok(leader, done, "return", "复查照片缺失")
    assert ids(leader) == [ordered]
    assert leader.get(inspection_path(ordered)).get_json()["follow_up"]["done_by"] is None


def overdue_everywhere(login, ordered: str) -> tuple[bool, bool, bool]:
    """Whether the order is overdue on its page (``follow_up.overdue``), in the list of overdue
    rectifications, and in its case-file checks (``rectification_overdue``)."""
    leader, supervisor = login("leader1"), login("supervisor")
    page = leader.get(inspection_path(ordered)).get_json()["follow_up"]["overdue"]
    checks = supervisor.get(f"{inspection_path(ordered)}/checks").get_json()
    return (
        page,
        ordered in ids(leader, "overdue=true"),
        "rectification_overdue" in {entry["flag"] for entry in checks},
    )


@pytest.mark.parametrize("state", ["draft", "returned"])
def test_a_follow_up_that_is_a_draft_or_returned_leaves_the_order_overdue_everywhere(
    clock, login, world, state
):
    """A follow-up settles the order once submitted and not returned: one still being written,
    or one the leader sent back, has settled nothing. The order's page, the rectification
    list and the case-file checks all say it is overdue; once the follow-up is submitted (or
    resubmitted) none of them does."""
    device = FakeDevice(login("officer1"))
    ordered = order(world, device, "2026-11-21")
    if state == "draft":
        done = follow_up(world, device, ordered, status="draft", ended_at=NOW.isoformat())
    else:
        done = follow_up(world, device, ordered)
        review_ok(login("leader1"), done, "return", "复查照片缺失")
    assert overdue_everywhere(login, ordered) == (True, True, True)

    version = login("leader1").get(inspection_path(done)).get_json()["version"]
    submit = {"status": "submitted", "outcome": "compliant"}
    [submitted] = device.push_ok(device.change("inspection", done, submit, base_version=version))
    assert submitted["status"] == "applied", submitted
    assert overdue_everywhere(login, ordered) == (False, False, False)


@pytest.mark.parametrize("state", ["draft", "returned"])
def test_an_order_that_is_a_draft_or_returned_is_overdue_nowhere(clock, login, world, state):
    """An order counts once submitted and not returned: before that it orders nothing, so no
    view calls it overdue, the case-file checks included."""
    device = FakeDevice(login("officer1"))
    if state == "draft":
        ordered = order(world, device, "2026-11-21", status="draft", ended_at=NOW.isoformat())
    else:
        ordered = order(world, device, "2026-11-21")
        review_ok(login("leader1"), ordered, "return", "整改期限不合理")
    assert overdue_everywhere(login, ordered) == (False, False, False)


def test_the_targets_file_agrees_with_the_list(clock, login, world):
    device = FakeDevice(login("officer1"))
    ordered = order(world, device, "2026-11-21")
    leader = login("leader1")
    target_file = leader.get(f"/api/v1/targets/{world.targets['shop1'].id}").get_json()
    assert [i["id"] for i in target_file["open_rectifications"]] == [ordered]


@pytest.mark.parametrize("query", ["overdue=soon", "squadron_id=-1", "target_id=x", "page=0"])
def test_bad_rectification_queries_are_422(clock, login, world, query):
    assert_error(login("leader1").get(f"/api/v1/rectifications?{query}"), 422, "validation_failed")


def test_a_follow_up_names_another_inspection_of_the_target_that_ordered_rectification(
    clock, login, world
):
    """An order cannot settle itself, and an inspection that ordered nothing has nothing to
    follow up: both are refused on ``follow_up_of``, and the order stays open."""
    device = FakeDevice(login("officer1"))
    ordered = order(world, device, "2026-11-27")
    compliant = push_inspection(world, device)
    [itself, of_compliant] = device.push_ok(
        device.change("inspection", ordered, {"follow_up_of": ordered}, base_version=1),
        device.change(
            "inspection",
            uuid.uuid4(),
            new_inspection(
                world, ["officer1", "officer2"], status="submitted", follow_up_of=compliant
            ),
        ),
    )
    assert itself["error"]["errors"]["json"]["follow_up_of"] == [
        "an inspection cannot be its own follow-up"
    ]
    assert of_compliant["error"]["errors"]["json"]["follow_up_of"] == [
        "that inspection ordered no rectification"
    ]
    assert ids(login("leader1")) == [ordered]
    follow_up(world, device, ordered)  # a real follow-up settles it
    assert ids(login("leader1")) == []


def test_a_follow_up_cannot_predate_the_order_it_follows_up(clock, login, world):
    """A rectification order made on 20 November is not settled by an inspection started on
    the 10th, ten days before anything was ordered: the push is ``rejected`` on
    ``follow_up_of`` and the order stays open (no ``done_by``). Moving a follow-up's start
    to before the order is refused the same way."""
    device = FakeDevice(login("officer1"))
    ordered = order(world, device, "2026-11-27")
    earlier = new_inspection(
        world,
        ["officer1", "officer2"],
        status="submitted",
        started_at="2026-11-10T01:30:00+00:00",
        ended_at="2026-11-10T01:50:00+00:00",
        follow_up_of=ordered,
    )
    [result] = device.push_ok(device.change("inspection", uuid.uuid4(), earlier))
    assert result["status"] == "rejected", result
    assert result["error"]["error"] == "validation_failed"
    assert "after this inspection started" in result["error"]["errors"]["json"]["follow_up_of"][0]
    leader = login("leader1")
    assert ids(leader) == [ordered]
    assert leader.get(inspection_path(ordered)).get_json()["follow_up"]["done_by"] is None

    later = follow_up(world, device, ordered, status="draft")
    [moved] = device.push_ok(
        device.change(
            "inspection", later, {"started_at": "2026-11-10T01:30:00+00:00"}, base_version=1
        )
    )
    assert "follow_up_of" in moved["error"]["errors"]["json"], moved


def test_a_deadline_before_the_inspections_shanghai_day_is_refused(clock, login, world):
    """Started at 00:30 on 21 November in Shanghai (16:30 UTC the day before): the 20th is
    before the inspection, the 21st (the same day) is a deadline."""
    device = FakeDevice(login("officer1"))
    fields = {
        "started_at": "2026-11-20T16:30:00+00:00",
        "ended_at": "2026-11-20T17:00:00+00:00",
        "outcome": "rectification_ordered",
        "answers": FAILED_S03,
    }
    early, same_day = device.push_ok(
        *[
            device.change(
                "inspection",
                uuid.uuid4(),
                new_inspection(
                    world,
                    ["officer1", "officer2"],
                    status="submitted",
                    rectification_deadline=deadline,
                    **fields,
                ),
            )
            for deadline in ("2026-11-20", "2026-11-21")
        ]
    )
    assert early["status"] == "rejected"
    assert "2026-11-21" in early["error"]["errors"]["json"]["rectification_deadline"][0]
    assert same_day["status"] == "applied", same_day
    [moved] = device.push_ok(
        device.change(
            "inspection",
            same_day["id"],
            {"started_at": "2026-11-22T01:00:00+00:00"},
            base_version=1,
        )
    )
    assert "rectification_deadline" in moved["error"]["errors"]["json"], moved
