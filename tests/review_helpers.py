"""Helpers for review, task and rectification tests: inspections pushed by a device, reviews
sent with the ETag just read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from fieldapp.auth import operations as auth_ops
from fieldapp.auth.models import Role
from fieldapp.db import db
from fieldapp.org.models import Squadron
from tests.conftest import PASSWORD, SYSTEM, etag_of
from tests.sync_helpers import SHOP_ANSWERS, FakeDevice, new_inspection

FAILED_S03 = {**SHOP_ANSWERS, "S03": {"result": "fail", "note": "油烟直排", "photo_ids": []}}


def push_inspection(
    world, device: FakeDevice, officers=("officer1", "officer2"), *, status="submitted", **fields
) -> str:
    """A new inspection pushed by ``device``; returns its id."""
    inspection_id = uuid.uuid4()
    [result] = device.push_ok(
        device.change(
            "inspection",
            inspection_id,
            new_inspection(world, list(officers), status=status, **fields),
        )
    )
    assert result["status"] == "applied", result
    return str(inspection_id)


def inspection_path(inspection_id) -> str:
    return f"/api/v1/inspections/{inspection_id}"


def review(api, inspection_id, decision: str, comment: str | None = None, etag: str | None = None):
    """POST the review with the ETag read just before (or the one given)."""
    etag = etag or etag_of(api, inspection_path(inspection_id))
    body = {"decision": decision}
    if comment is not None:
        body["comment"] = comment
    return api.post(
        f"{inspection_path(inspection_id)}/review", json=body, headers={"If-Match": etag}
    )


def review_ok(api, inspection_id, decision: str, comment: str | None = None) -> dict:
    response = review(api, inspection_id, decision, comment)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def add_second_leader(app, world, username: str) -> None:
    """A deputy leader (副中队长) of the first squadron, committed, to review alongside leader1."""
    with app.app_context():
        auth_ops.create_user(
            SYSTEM,
            app.extensions["fieldapp.auth"],
            username=username,
            name="副中队长",
            role=Role.leader,
            password=PASSWORD,
            district_id=world.district.id,
            squadron=db.session.get(Squadron, world.squadrons[0].id),
        )
        db.session.commit()


def receive_complaint(api, **where) -> str:
    """A 12345 complaint recorded by ``api`` (``target_id=`` or ``squadron_id=``); its id."""
    response = api.post(
        "/api/v1/complaints",
        json={"category": "油烟扰民", "text": "饭店油烟直排, 影响居民", **where},
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def complaint_task(api, world, target_id: str, complaint_id: str) -> str:
    """A task sent to officer1 and officer2 to check the complaint at ``target_id``; its id."""
    response = api.post(
        "/api/v1/tasks",
        json={
            "target_id": target_id,
            "assignee_ids": [str(world.users[n].id) for n in ("officer1", "officer2")],
            "due": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
            "note": "12345 投诉核查",
            "origin": "complaint",
            "complaint_id": complaint_id,
        },
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]
