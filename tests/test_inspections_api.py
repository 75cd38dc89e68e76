"""Reading inspections: the list and its filters, scoping, the record's ETag, the review queue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from tests.conftest import assert_error
from tests.review_helpers import FAILED_S03, inspection_path, push_inspection, review_ok
from tests.sync_helpers import FakeDevice


def started(day: int, hour: int = 1) -> str:
    return datetime(2026, 11, day, hour, 30, tzinfo=UTC).isoformat()


def ids(api, query: str = "") -> list[str]:
    response = api.get(f"/api/v1/inspections?{query}")
    assert response.status_code == 200, response.get_json()
    return [i["id"] for i in response.get_json()["items"]]


def test_the_list_filters_and_puts_the_latest_first(login, world):
    device = FakeDevice(login("officer1"))
    early = push_inspection(world, device, started_at=started(10), ended_at=started(10, 2))
    mid = push_inspection(
        world,
        device,
        officers=("officer1",),
        target="site1",
        started_at=started(15),
        ended_at=started(15, 2),
    )
    draft = push_inspection(world, device, status="draft", started_at=started(18))
    elsewhere = push_inspection(
        world, FakeDevice(login("officer3")), officers=("officer3",), target="shop2"
    )
    leader = login("leader1")
    review_ok(leader, early, "approve")

    assert ids(leader) == [draft, mid, early]
    assert ids(leader, f"target_id={world.targets['site1'].id}") == [mid]
    assert ids(leader, f"officer_id={world.users['officer2'].id}") == [draft, early]
    assert ids(leader, "status=draft") == [draft]
    assert ids(leader, "review_status=approved") == [early]
    assert ids(leader, "status=submitted&review_status=pending") == [mid]
    # Dates are whole Shanghai days, ``to`` included; times are exact.
    assert ids(leader, "from=2026-11-15&to=2026-11-15") == [mid]
    assert ids(leader, "from=2026-11-11") == [draft, mid]
    assert ids(leader, "to=2026-11-10") == [early]
    assert ids(leader, "from=2026-11-15T09:30:00%2B08:00") == [draft, mid]
    assert ids(leader, "from=2026-11-15T09:30:01%2B08:00") == [draft]
    assert ids(leader, f"squadron_id={world.squadrons[1].id}") == []  # not in scope

    assert ids(login("leader2")) == [elsewhere]
    supervisor = login("supervisor")
    assert set(ids(supervisor)) == {draft, mid, early, elsewhere}
    assert ids(supervisor, f"squadron_id={world.squadrons[1].id}") == [elsewhere]
    page = leader.get("/api/v1/inspections?per_page=2").get_json()
    assert len(page["items"]) == 2 and page["has_more"] is True
    page = leader.get("/api/v1/inspections?per_page=2&page=2").get_json()
    assert [i["id"] for i in page["items"]] == [early] and page["has_more"] is False


def test_the_record_has_the_wire_shape_and_is_scoped(login, world):
    inspection_id = push_inspection(world, FakeDevice(login("officer1")))
    record = login("officer2").get(inspection_path(inspection_id)).get_json()
    for name in (
        "id",
        "version",
        "target_id",
        "checklist_id",
        "checklist_version",
        "officer_ids",
        "origin",
        "task_id",
        "draw_id",
        "started_at",
        "ended_at",
        "location",
        "answers",
        "findings",
        "outcome",
        "rectification_deadline",
        "legal_basis",
        "follow_up_of",
        "photo_ids",
        "status",
        "review",
        "score",
        "flags",
    ):
        assert name in record, name
    assert record["target"]["name"] == "老王面馆" and record["target"]["kind"] == "shop"
    assert record["review"] == {
        "status": "pending",
        "comment": None,
        "reviewed_by": None,
        "reviewed_at": None,
    }
    for outsider in ("officer3", "leader2"):
        assert_error(login(outsider).get(inspection_path(inspection_id)), 404, "not_found")
    assert_error(login("officer1").get(inspection_path(uuid.uuid4())), 404, "not_found")


def test_the_etag_changes_with_every_version(login, world):
    device = FakeDevice(login("officer1"))
    inspection_id = push_inspection(world, device)
    leader = login("leader1")
    first = leader.get(inspection_path(inspection_id))
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    unchanged = leader.get(inspection_path(inspection_id), headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.headers["ETag"] == etag
    device.push_ok(device.change("inspection", inspection_id, {"findings": "补"}, base_version=1))
    second = leader.get(inspection_path(inspection_id), headers={"If-None-Match": etag})
    assert second.status_code == 200 and second.headers["ETag"] != etag
    assert second.get_json()["version"] == first.get_json()["version"] + 1


def test_the_etag_changes_when_the_follow_up_arrives(login, world):
    """A rectification order's ``follow_up`` (复查: done_by) changes when the follow-up
    inspection arrives, without a new version of the order: a leader's client revalidating
    with ``If-None-Match`` gets the order with its follow-up (200 and a new ETag), not a 304
    that keeps it showing as not followed up."""
    device = FakeDevice(login("officer1"))
    ordered = push_inspection(
        world,
        device,
        answers=FAILED_S03,
        outcome="rectification_ordered",
        rectification_deadline="2026-12-31",
    )
    leader = login("leader1")
    first = leader.get(inspection_path(ordered))
    assert first.get_json()["follow_up"]["done_by"] is None
    done = push_inspection(world, device, follow_up_of=ordered)
    again = leader.get(inspection_path(ordered), headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 200
    assert again.get_json()["follow_up"]["done_by"] == done
    assert again.get_json()["version"] == first.get_json()["version"]
    assert again.headers["ETag"] != first.headers["ETag"]


@pytest.mark.parametrize(
    "query",
    [
        "status=approved",
        "review_status=done",
        "from=yesterday",
        "from=2026-11-20T10:00:00",  # a time needs its offset
        "from=2026-11-20&to=2026-11-19",
        "officer_id=officer1",
        "target_id=1",
        "squadron_id=abc",
        "page=0",
        "per_page=1000",
    ],
)
def test_bad_list_queries_are_422(login, world, query):
    assert_error(login("leader1").get(f"/api/v1/inspections?{query}"), 422, "validation_failed")


def test_the_review_queue_is_per_squadron_and_the_longest_waiting_first(login, world):
    device = FakeDevice(login("officer1"))
    with time_machine.travel(datetime(2026, 11, 20, 6, 0, tzinfo=UTC), tick=False) as clock:
        # Submitted in this order, whatever their inspections' own times.
        first = push_inspection(world, device, started_at=started(20, 2))
        clock.shift(timedelta(minutes=5))
        second = push_inspection(world, device, started_at=started(19))
        clock.shift(timedelta(minutes=5))
        third = push_inspection(world, device, started_at=started(20, 3))
        clock.shift(timedelta(minutes=5))
        push_inspection(world, device, status="draft")
        other = push_inspection(
            world, FakeDevice(login("officer3")), officers=("officer3",), target="shop2"
        )
        leader = login("leader1")
        review_ok(leader, second, "approve")
        queue = leader.get("/api/v1/review/queue").get_json()
        assert [i["id"] for i in queue["items"]] == [first, third]
        assert queue["items"][0]["review"]["status"] == "pending"
        assert [
            i["id"] for i in login("leader2").get("/api/v1/review/queue").get_json()["items"]
        ] == [other]
        admin = login("admin")
        query = f"/api/v1/review/queue?squadron_id={world.squadrons[0].id}"
        assert [i["id"] for i in admin.get(query).get_json()["items"]] == [first, third]
        assert_error(leader.get("/api/v1/review/queue?squadron_id=x"), 422, "validation_failed")
