"""Sync under arbitrary input: whatever a device sends, the answer is a clear 4xx or a 200 with
one result per change, never a 500, and a good change sent beside the bad ones still applies.

The changes start from valid ones of every entity (creates, edits of stored records, deletes)
and have values anywhere inside them replaced by arbitrary JSON, or removed, or an unknown key
added: the malformed input that reaches the merge, the reference checks and the writes, not
only the envelope's validation.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sync_helpers import NEW_SHOP, FakeDevice, new_inspection, photo_metadata

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", 60)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

TRICKY_STRINGS = st.sampled_from(
    [
        "",
        " ",
        "null",
        "-1",
        "1e400",
        "0000000000000000",
        "2026-11-20T09:30:00+08:00",
        "2026-13-40T25:61:00Z",
        "9999-12-31T23:59:59+14:00",
        "0001-01-01T00:00:00-12:00",
        "0001-01-01T00:00:00+08:00",
        "9999-12-31T23:00:00-12:00",
        "9999-12-31",
        "00000000-0000-0000-0000-000000000000",
        "S01",
        "S99",
        "wgs84",
        "gcj02",
        "bd09",
        "submitted",
        "approved",
        "delete",
        "inspection",
        "审核通过",
        "\u0000",
        "\ud800",
        "门前\udc00堆物",
        "x" * 300,
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | TRICKY_STRINGS
    | st.uuids().map(str)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _url_text(text: str) -> bool:
    """Whether a URL can carry ``text`` (as UTF-8, percent-encoded): not unpaired surrogates."""
    return not any("\ud800" <= c <= "\udfff" for c in text)


def _paths(value, path=()):
    """Every place inside ``value`` (dict keys and list positions, at any depth)."""
    yield path
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*path, index))


@st.composite
def mutated(draw, valid: dict) -> dict:
    """``valid`` with one to three of its values replaced, removed, or given an unknown key."""
    change = copy.deepcopy(valid)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(list(_paths(change))))
        if not path:
            continue
        *parents, last = path
        holder = change
        try:
            for step in parents:
                holder = holder[step]
            holder[last]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation took this place away
        action = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
        if action == "replace":
            holder[last] = draw(JSON)
        elif action == "remove":
            del holder[last]
        elif isinstance(holder[last], dict):
            holder[last][draw(st.text(min_size=1, max_size=10))] = draw(JSON)
    return change


@pytest.fixture
def fuzzing(login, world):
    """An officer's device, valid changes of every entity to spoil (two records stored), and a
    way to leave an open conflict (a colleague and the officer edit the same findings)."""
    officer = FakeDevice(login("officer1"))
    colleague = FakeDevice(login("officer2"))

    def conflicted() -> uuid.UUID:
        record = uuid.uuid4()
        officer.push_ok(
            officer.change("inspection", record, new_inspection(world, ["officer1", "officer2"]))
        )
        for device, findings in ((colleague, "同事记录"), (officer, "本人记录")):
            [result] = device.push_ok(
                device.change("inspection", record, {"findings": findings}, base_version=1)
            )
        assert result["status"] == "conflict", result
        return record

    stored, other = conflicted(), conflicted()
    shop = str(world.targets["shop1"].id)
    officer_id = str(world.users["officer1"].id)

    def templates() -> list[dict]:
        return [
            officer.change("inspection", uuid.uuid4(), new_inspection(world, ["officer1"])),
            officer.change(
                "inspection",
                stored,
                {"findings": "门前堆物", "answers": {"S02": {"result": "fail", "note": "占道"}}},
                base_version=1,
            ),
            officer.change(
                "inspection",
                stored,
                {"status": "submitted", "outcome": "compliant", "ended_at": "2026-11-20T10:00Z"},
                base_version=1,
            ),
            officer.change("inspection", other, {}, base_version=1, op="delete"),
            officer.change(
                "photo",
                uuid.uuid4(),
                photo_metadata(
                    stored,
                    item_code="S01",
                    location={"lon": 121.47, "lat": 31.37, "crs": "gcj02"},
                ),
            ),
            officer.change(
                "track",
                uuid.uuid4(),
                {
                    "officer_id": officer_id,
                    "points": [
                        {"t": "2026-11-20T09:31:00+08:00", "lon": 121.47, "lat": 31.37},
                        {"t": "2026-11-20T09:32:00+08:00", "lon": 121.471, "lat": 31.371},
                    ],
                },
            ),
            officer.change("target", uuid.uuid4(), dict(NEW_SHOP)),
            officer.change("target", shop, {"name": "鲜果多"}, base_version=1),
        ]

    return SimpleNamespace(officer=officer, templates=templates, conflicted=conflicted)


def post_json(api, path: str, body):
    """POST ``body`` as JSON text with non-ASCII escaped, as a device's JSON library may write
    it: unpaired surrogates then reach the server (as ``\\ud800``), which they could not as
    UTF-8."""
    return api.post(path, data=json.dumps(body), content_type="application/json")


def assert_error_body(body: dict, status: int) -> None:
    assert body["code"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["message"], str)


@FUZZ
@given(data=st.data())
def test_spoilt_changes_are_refused_one_by_one_and_the_good_one_applies(fuzzing, world, data):
    officer = fuzzing.officer
    spoilt = [
        data.draw(mutated(template), label=f"change {n}")
        for n, template in enumerate(
            data.draw(st.lists(st.sampled_from(fuzzing.templates()), min_size=1, max_size=4))
        )
    ]
    good = officer.change("inspection", uuid.uuid4(), new_inspection(world, ["officer1"]))
    response = post_json(
        officer.api,
        "/api/v1/sync/push",
        {"device_id": officer.device_id, "changes": [*spoilt, good]},
    )

    # The envelope is sound, so the batch is answered change by change, whatever the changes.
    assert response.status_code == 200, response.get_json()
    results = response.get_json()["results"]
    assert len(results) == len(spoilt) + 1
    for result in results:
        assert result["status"] in {"applied", "merged", "conflict", "rejected"}
        if result["status"] == "rejected":
            assert_error_body(result["error"], result["error"]["code"])
            assert 400 <= result["error"]["code"] < 500
        else:
            assert isinstance(result["version"], int) and result["error"] is None
    assert results[-1]["status"] == "applied", results[-1]
    assert results[-1]["id"] == good["id"] and results[-1]["version"] == 1


@FUZZ
@given(body=mutated({"device_id": "dev-officer1", "changes": [{"change_id": "x"}]}) | JSON)
def test_a_spoilt_batch_envelope_is_a_4xx_with_its_reasons(fuzzing, body):
    response = post_json(fuzzing.officer.api, "/api/v1/sync/push", body)
    assert response.status_code < 500, response.get_json()
    if response.status_code != 200:
        assert_error_body(response.get_json(), response.status_code)


@FUZZ
@given(
    cursor=(st.text(max_size=60) | TRICKY_STRINGS).filter(_url_text),
    limit=(st.text(max_size=6) | SCALARS.map(str)).filter(_url_text),
)
def test_any_cursor_or_limit_is_a_page_or_a_422(fuzzing, cursor, limit):
    response = fuzzing.officer.api.get(
        "/api/v1/sync/pull", query_string={"cursor": cursor, "limit": limit}
    )
    assert response.status_code in (200, 422), response.get_json()
    if response.status_code == 422:
        assert_error_body(response.get_json(), 422)
    else:
        assert isinstance(response.get_json()["changes"], list)


@FUZZ
@given(body=JSON | mutated({"keep": "value", "value": "门前已清理"}), real=st.booleans())
def test_any_resolution_body_is_a_clear_answer(login, fuzzing, body, real):
    leader = login("leader1")
    if real:
        entries = leader.get("/api/v1/conflicts?status=open").get_json()["items"]
        if not entries:
            fuzzing.conflicted()
            entries = leader.get("/api/v1/conflicts?status=open").get_json()["items"]
        conflict_id = entries[0]["id"]
    else:
        conflict_id = str(uuid.uuid4())
    response = post_json(leader, f"/api/v1/conflicts/{conflict_id}/resolve", body)
    assert response.status_code < 500, response.get_json()
    if response.status_code >= 400:
        assert_error_body(response.get_json(), response.status_code)
