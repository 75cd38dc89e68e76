"""Times at the ends of the calendar: valid ISO 8601, but with no UTC instant that fieldapp could
store or compare (year 1 at a positive offset, 9999-12-31 at a negative one, or the day after
9999-12-31). Each is a 422 naming the field, wherever a time is taken; never a 500."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest

from tests.conftest import assert_error
from tests.sync_helpers import FakeDevice, new_inspection, photo_metadata

BEFORE_YEAR_1 = "0001-01-01T00:00:00+08:00"
AFTER_YEAR_9999 = "9999-12-31T23:00:00-12:00"


@pytest.mark.parametrize("moment", [BEFORE_YEAR_1, AFTER_YEAR_9999])
@pytest.mark.parametrize(
    ("username", "path", "field"),
    [
        ("leader1", "/api/v1/supervision/case-reviews?from={}", "from"),
        ("leader1", "/api/v1/supervision/case-reviews?to={}", "to"),
        ("supervisor", "/api/v1/audit?from={}", "from"),
        ("leader1", "/api/v1/complaints?from={}", "from"),
        ("leader1", "/api/v1/inspections?from={}", "from"),
        ("leader1", "/api/v1/conflicts?to={}", "to"),
        ("leader1", "/api/v1/tracks?officer_id={officer}&from={}&to=2026-11-21T00:00:00Z", "from"),
    ],
)
def test_a_query_time_past_the_calendar_is_422(login, world, username, path, field, moment):
    officer = world.users["officer1"].id
    response = login(username).get(path.format(quote(moment), officer=officer))
    assert field in assert_error(response, 422, "validation_failed")["errors"]["query"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/inspections?to=9999-12-31", "to"),
        ("/api/v1/conflicts?to=9999-12-31", "to"),
        ("/api/v1/public/inspections?from=0001-01-01", "from"),
        ("/api/v1/public/inspections?to=9999-12-31", "to"),
    ],
)
def test_a_whole_day_at_the_ends_of_the_calendar_is_422(login, world, path, field):
    response = login("leader1").get(path)
    assert field in assert_error(response, 422, "validation_failed")["errors"]["query"]


@pytest.mark.parametrize("moment", [BEFORE_YEAR_1, AFTER_YEAR_9999])
def test_a_pushed_time_past_the_calendar_is_rejected_with_its_field(login, world, moment):
    officer = FakeDevice(login("officer1"))
    record = uuid.uuid4()
    results = officer.push_ok(
        officer.change(
            "inspection", uuid.uuid4(), new_inspection(world, ["officer1"], started_at=moment)
        ),
        officer.change("inspection", record, new_inspection(world, ["officer1"])),
        officer.change(
            "photo",
            uuid.uuid4(),
            photo_metadata(record, taken_at=moment),
        ),
        officer.change(
            "track",
            uuid.uuid4(),
            {
                "officer_id": str(world.users["officer1"].id),
                "points": [{"t": moment, "lon": 121.47, "lat": 31.37}],
            },
        ),
    )
    assert [r["status"] for r in results] == ["rejected", "applied", "rejected", "rejected"]
    started, _, photo, track = [r["error"] and r["error"]["errors"]["json"] for r in results]
    assert "started_at" in started
    assert "taken_at" in photo
    assert "points" in track


@pytest.mark.parametrize("moment", [BEFORE_YEAR_1, AFTER_YEAR_9999])
def test_a_task_due_past_the_calendar_is_422(login, world, moment):
    response = login("leader1").post(
        "/api/v1/tasks",
        json={
            "target_id": str(world.targets["shop1"].id),
            "assignee_ids": [str(world.users["officer1"].id)],
            "due": moment,
            "origin": "manual",
        },
    )
    assert "due" in assert_error(response, 422, "validation_failed")["errors"]["json"]
