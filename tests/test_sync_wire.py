"""The hand-built wire forms (an inspection, for pull; a push's answer) equal the schemas' dumps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import sqlalchemy as sa

from fieldapp.db import db
from fieldapp.inspections.models import Inspection
from fieldapp.targets.models import Target
from schemas.inspections import InspectionSchema
from schemas.sync import PushSchema
from schemas.targets import TargetSchema
from sync import engine
from sync.entities import inspection_wire
from tests.review_helpers import push_inspection, review_ok
from tests.sync_helpers import NEW_SHOP, FakeDevice, new_inspection


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


def test_pulled_inspections_are_compact_json_on_every_database(app, login, world):
    """Devices pull on mobile data: the page carries no spacing, whichever database stored the
    answers, photo lists, flags and officers (PostgreSQL's jsonb would print its own), for
    records created in a batch and for records edited since."""
    officer = FakeDevice(login("officer1"))
    created, edited = uuid.uuid4(), uuid.uuid4()
    officer.push_ok(
        officer.change(
            "inspection",
            created,
            new_inspection(
                world,
                ["officer1", "officer2"],
                photo_ids=[str(uuid.uuid4())],
                location={"lon": 121.47, "lat": 31.37, "accuracy_m": 3.0, "crs": "gcj02"},
            ),
        ),
        officer.change("inspection", edited, new_inspection(world, ["officer1"])),
    )
    officer.push_ok(
        officer.change(
            "inspection",
            edited,
            {"findings": "门口堆物, 已整改", "photo_ids": [str(uuid.uuid4())]},
            base_version=1,
        )
    )
    response = login("leader1").get("/api/v1/sync/pull", query_string={"limit": 200})
    raw = response.get_data()
    page = orjson.loads(raw)
    pulled = {c["id"]: c["data"] for c in page["changes"] if c["entity"] == "inspection"}
    assert set(pulled) == {str(created), str(edited)}
    assert pulled[str(edited)]["findings"] == "门口堆物, 已整改"
    assert len(pulled[str(created)]["answers"]) > 1
    assert raw == orjson.dumps(page)


def test_pulled_reviewed_follow_ups_are_the_schema_dump(app, login, world):
    """A reviewed record (leader, time, comment, score) that follows up an earlier one: every
    column a device reads comes through the pull as the schema says, ids and times included."""
    officer = FakeDevice(login("officer1"))
    leader = login("leader1")
    first = push_inspection(
        world,
        officer,
        ("officer1",),
        outcome="rectification_ordered",
        rectification_deadline="2026-12-01",
        legal_basis="《上海市市容环境卫生管理条例》第二十二条",
    )
    review_ok(leader, first, "return", "请补充整改期限")
    second = push_inspection(
        world,
        officer,
        ("officer2", "officer1"),  # the order the device gave is kept
        follow_up_of=first,
        ended_at=datetime(2026, 11, 20, 9, 50, 7, 250000, tzinfo=UTC).isoformat(),
    )
    review_ok(leader, second, "approve")
    page = leader.get("/api/v1/sync/pull", query_string={"limit": 200}).get_json()
    pulled = {c["id"]: c for c in page["changes"] if c["entity"] == "inspection"}
    assert set(pulled) == {first, second}
    with app.app_context():
        for inspection_id, change in pulled.items():
            stored = db.session.get(Inspection, uuid.UUID(inspection_id))
            assert change["data"] == InspectionSchema().dump(stored)
    assert pulled[first]["data"]["review"]["comment"] == "请补充整改期限"
    assert pulled[second]["data"]["review"]["reviewed_by"] == str(world.users["leader1"].id)
    assert pulled[second]["data"]["follow_up_of"] == first
    assert pulled[second]["data"]["ended_at"] == "2026-11-20T09:50:07.250000+00:00"
    assert pulled[second]["data"]["officer_ids"] == [
        str(world.users["officer2"].id),
        str(world.users["officer1"].id),
    ]


def test_pulled_targets_are_the_schema_dump(app, login, world):
    """Shops and sites (with a boundary, a scale and a phase, or reported from a device's
    GCJ-02 map, with the original location) pull as the targets API dumps them."""
    officer = FakeDevice(login("officer1"))
    reported = uuid.uuid4()
    gcj02 = {"lon": 121.4847, "lat": 31.3781, "crs": "gcj02"}
    officer.push_ok(officer.change("target", reported, NEW_SHOP | {"location": gcj02}))
    page = login("leader1").get("/api/v1/sync/pull", query_string={"limit": 200}).get_json()
    pulled = {c["id"]: c["data"] for c in page["changes"] if c["entity"] == "target"}
    assert set(pulled) == {
        str(world.targets["shop1"].id),
        str(world.targets["site1"].id),
        str(reported),
    }
    assert pulled[str(reported)]["location"]["original"] == gcj02
    with app.app_context():
        for target_id, data in pulled.items():
            assert data == TargetSchema().dump(db.session.get(Target, uuid.UUID(target_id)))
    site = pulled[str(world.targets["site1"].id)]
    assert (site["scale"], site["phase"]) == ("large", "earthwork")
    assert site["boundary"]["type"] == "Polygon"
    assert pulled[str(world.targets["shop1"].id)]["scale"] is None


def test_push_answers_are_the_schema_dump(app, login, world, monkeypatch):
    """Results of every kind (applied, merged with a conflict, rejected, replayed from their
    stored record) are written as PushSchema dumps them, byte for byte."""
    returned, apply_batch = [], engine.push

    def push(ctx, changes):
        returned.append(apply_batch(ctx, changes))
        return returned[-1]

    monkeypatch.setattr(engine, "push", push)
    officer = FakeDevice(login("officer1"))
    colleague = FakeDevice(login("officer2"))
    record = uuid.uuid4()
    create = officer.change("inspection", record, new_inspection(world, ["officer1", "officer2"]))
    officer.push_ok(create)
    colleague.push_ok(colleague.change("inspection", record, {"findings": "同事"}, base_version=1))
    response = officer.push(
        create,  # replayed
        officer.change("inspection", record, {"findings": "本人"}, base_version=1),  # conflict
        officer.change("inspection", uuid.uuid4(), {"findings": 7}),  # rejected
        {"change_id": None, "entity": "case"},  # rejected before its id is known
    )
    assert response.status_code == 200
    statuses = [r["status"] for r in response.get_json()["results"]]
    assert statuses == ["applied", "conflict", "rejected", "rejected"]
    assert response.get_json()["results"][0]["replayed"] is True
    server_time = datetime.fromisoformat(response.get_json()["server_time"])
    dumped = PushSchema().dump({"results": returned[-1], "server_time": server_time})
    with app.app_context():  # as flask-smorest writes a view's dump
        assert response.get_data() == app.json.response(dumped).get_data()
