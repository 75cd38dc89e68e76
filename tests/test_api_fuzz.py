"""No input produces a 500, on any endpoint: requests generated from the served OpenAPI document
(Schemathesis), sent as an officer, a leader, a supervisor and an admin, get a 2xx or a 4xx
with the error body of API.md, and a status the document lists for the operation.

The requests follow the documented schemas most of the time and break them on purpose the rest
(wrong types, missing or extra fields, values out of range), so they reach the operations, not
only the input validation. (Schemathesis's own pytest plugin does not run on pytest 9, so its
strategies are drawn from with hypothesis directly.)
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from schemas.photos import OFFSET_CONTENT_TYPE
from tests.sync_helpers import FakeDevice, new_inspection

#: Calls that would sign the test's own users out for the rest of the run.
SIGNING_OUT = {("DELETE", "/api/v1/auth/token")}

#: A resumable upload's part is bytes, as Schemathesis sends application/octet-stream.
schemathesis.serializer.alias(OFFSET_CONTENT_TYPE, "application/octet-stream")

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", 200))


@pytest.fixture
def operations(app, world):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) > 50, "the OpenAPI document lists the API's operations"
    return [
        operation
        for operation in found
        if (operation.method.upper(), operation.path) not in SIGNING_OUT
    ]


@pytest.fixture
def documented(client):
    """The statuses the document lists for each operation, by (METHOD, path)."""
    spec = client.get("/api/v1/openapi.json").get_json()
    return {
        (method.upper(), path): set(operation["responses"])
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    }


@pytest.fixture
def own_photo_store(app, tmp_path, monkeypatch):
    """A photo store of the test's own: the uploads it provokes (first parts kept for a resume)
    are rolled back with the test, but their files would stay in the store the photo tests look
    into."""
    monkeypatch.setitem(app.config, "STORAGE_DIR", str(tmp_path / "photos"))


@pytest.fixture
def callers(login):
    return {name: login(name) for name in ("officer1", "leader1", "supervisor", "admin")}


@pytest.fixture
def stored(login, world):
    """Ids of stored records, by the path parameter that names them, so that requests reach the
    operations on existing records rather than stopping at a 404: a submitted inspection with
    an open conflict, a task, and the world's target, checklist, squadron, district and a
    colleague."""
    officer, colleague = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record = uuid.uuid4()
    officer.push_ok(
        officer.change(
            "inspection",
            record,
            new_inspection(world, ["officer1", "officer2"], status="submitted"),
        )
    )
    colleague.push_ok(
        colleague.change("inspection", record, {"findings": "同事记录"}, base_version=1)
    )
    officer.push_ok(officer.change("inspection", record, {"findings": "本人记录"}, base_version=1))
    leader = login("leader1")
    [conflict] = leader.get(f"/api/v1/conflicts?record_id={record}").get_json()["items"]
    task = leader.post(
        "/api/v1/tasks",
        json={
            "target_id": str(world.targets["shop1"].id),
            "assignee_ids": [str(world.users["officer1"].id)],
            "due": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
            "origin": "manual",
        },
    )
    assert task.status_code == 201, task.get_json()
    return {
        "inspection_id": str(record),
        "conflict_id": conflict["id"],
        "task_id": task.get_json()["id"],
        "target_id": str(world.targets["shop1"].id),
        "checklist_id": world.checklists["shop"].id,
        "squadron_id": world.squadrons[0].id,
        "district_id": world.district.id,
        "user_id": str(world.users["officer2"].id),
    }


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
@pytest.mark.usefixtures("own_photo_store")
def test_no_request_gets_a_500(operations, documented, callers, stored, data):
    operation = data.draw(st.sampled_from(operations), label="operation")
    mode = data.draw(st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]))
    case = data.draw(operation.as_strategy(generation_mode=mode), label="request")
    for name in case.path_parameters or {}:
        if name in stored and data.draw(st.booleans(), label=f"a stored {name}"):
            case.path_parameters[name] = stored[name]
    # A push names the device of its token, or stops at the 403 before its changes are read.
    own_device = isinstance(case.body, dict) and isinstance(case.body.get("device_id"), str)
    own_device = own_device and data.draw(st.booleans(), label="the token's device_id")
    statuses = documented[(case.method.upper(), operation.path)]
    for name, caller in callers.items():
        if own_device:
            case.body["device_id"] = caller.device_id
        response = case.call(headers={"Authorization": f"Bearer {caller.token}"})
        assert response.status_code < 500, (name, case.method, case.formatted_path, response.text)
        # Not only under "default": a device developer reads the list of answers.
        assert str(response.status_code) in statuses, (
            name,
            case.method,
            case.formatted_path,
            response.status_code,
            response.content[:500],
        )
        if response.status_code >= 400 and "json" in response.headers.get("Content-Type", [""])[0]:
            body = response.json()
            assert body["code"] == response.status_code, body
            assert isinstance(body["error"], str) and body["error"], body
