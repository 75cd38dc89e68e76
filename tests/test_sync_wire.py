"""The hand-built wire form of an inspection (fast, for pull) equals the schema's dump."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from fieldapp.db import db
from fieldapp.inspections.models import Inspection
from schemas.inspections import InspectionSchema
from sync.entities import inspection_wire
from tests.sync_helpers import FakeDevice, new_inspection


def test_wire_form_matches_the_schema(app, login, world):
    officer = FakeDevice(login("officer1"))
    plain, rich = uuid.uuid4(), uuid.uuid4()
    officer.push_ok(
        officer.change("inspection", plain, new_inspection(world, ["officer1"])),
        officer.change(
            "inspection",
            rich,
            new_inspection(
                world,
                ["officer1", "officer2"],
                status="submitted",
                outcome="rectification_ordered",
                rectification_deadline="2026-12-01",
                findings="门口堆物",
                photo_ids=[str(uuid.uuid4())],
                location={"lon": 121.47, "lat": 31.37, "accuracy_m": 9.5, "crs": "gcj02"},
            ),
        ),
    )
    with app.app_context():
        for inspection in db.session.scalars(sa.select(Inspection)):
            assert inspection_wire(inspection) == InspectionSchema().dump(inspection)


def test_pulled_inspections_are_the_schema_dump(app, login, world):
    """JSON columns (answers, photo lists, flags, the original location) are placed into the page
    as the database holds them; the page must still say what the schema says."""
    officer = FakeDevice(login("officer1"))
    ahead = FakeDevice(login("officer2"), clock_ms=4_000_000_000_000)  # flagged clock_skew
    record, skewed = uuid.uuid4(), uuid.uuid4()
    officer.push_ok(
        officer.change(
            "inspection",
            record,
            new_inspection(
                world,
                ["officer1"],
                findings='店招破损，"引号"与反斜杠\\',
                location={"lon": 121.47, "lat": 31.37, "accuracy_m": 3.25, "crs": "bd09"},
                photo_ids=[str(uuid.uuid4()), str(uuid.uuid4())],
            ),
        )
    )
    ahead.push_ok(ahead.change("inspection", skewed, new_inspection(world, ["officer2"])))
    response = login("leader1").get("/api/v1/sync/pull", query_string={"limit": 200})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    page = response.get_json()
    assert set(page) == {"changes", "cursor", "has_more", "reset"}
    pulled = [c for c in page["changes"] if c["entity"] == "inspection"]
    assert [c["id"] for c in pulled] == [str(record), str(skewed)]
    with app.app_context():
        for change in pulled:
            assert set(change) == {"entity", "id", "op", "version", "data"}
            stored = db.session.get(Inspection, uuid.UUID(change["id"]))
            assert change["data"] == InspectionSchema().dump(stored)
            assert change["version"] == stored.version
    assert len(pulled[0]["data"]["photo_ids"]) == 2
    assert pulled[0]["data"]["location"]["original"]["crs"] == "bd09"
    assert pulled[1]["data"]["flags"] == ["clock_skew"]
    assert "original" not in pulled[1]["data"]["location"]
