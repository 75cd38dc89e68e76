"""Bad input on every endpoint gets the error envelope and a 4xx, and changes nothing.

API.md, "Errors": malformed JSON, wrong types, unknown fields, missing fields, oversized pages,
bad UUIDs, bad GeoJSON are all answered with the envelope; no input produces a 500.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from fieldapp.audit.models import AuditEntry
from fieldapp.auth.models import User
from fieldapp.checklists.models import Checklist, ChecklistVersion
from fieldapp.db import db
from fieldapp.org.models import Squadron
from fieldapp.targets.models import Target
from tests.conftest import (
    assert_error,
    etag_of,
    shop_payload,
    site_payload,
    square,
)

ZERO_UUID = "00000000-0000-4000-8000-000000000000"
CHECKLIST_ITEM = {"code": "S09", "text": "门前三包责任落实", "severity": "minor"}


def endpoint(name: str, world) -> tuple[str, str, dict, str | None]:
    """(method, path, a valid body, the path whose ETag goes in If-Match or None)."""
    shop1 = f"/api/v1/targets/{world.targets['shop1'].id}"
    squadron1 = f"/api/v1/squadrons/{world.squadrons[0].id}"
    officer2 = f"/api/v1/users/{world.users['officer2'].id}"
    checklist = world.checklists["shop"].id
    return {
        "sign_in": (
            "POST",
            "/api/v1/auth/token",
            {"username": "officer1", "password": "fieldapp-demo", "device_id": "pad-1"},
            None,
        ),
        "create_target": ("POST", "/api/v1/targets", shop_payload(world.squadrons[0].id), None),
        "edit_target": ("PATCH", shop1, {"name": "王记面馆"}, shop1),
        "create_squadron": (
            "POST",
            "/api/v1/squadrons",
            {
                "name": "淞南中队",
                "district_id": world.district.id,
                "jurisdiction": square(121.5, 31.3),
            },
            None,
        ),
        "edit_squadron": ("PATCH", squadron1, {"name": "吴淞一中队"}, squadron1),
        "create_user": (
            "POST",
            "/api/v1/users",
            {
                "username": "officer9",
                "name": "李娜",
                "role": "officer",
                "password": "long-enough-pass",
                "squadron_id": world.squadrons[0].id,
            },
            None,
        ),
        "edit_user": ("PATCH", officer2, {"name": "王强"}, officer2),
        "create_checklist": (
            "POST",
            "/api/v1/checklists",
            {"kind": "shop", "title": "夜间经营检查表", "items": [CHECKLIST_ITEM]},
            None,
        ),
        "publish_checklist": (
            "POST",
            f"/api/v1/checklists/{checklist}/versions",
            {"title": "沿街商户市容环境检查表(2025版)", "items": [CHECKLIST_ITEM]},
            f"/api/v1/checklists/{checklist}",
        ),
        "create_task": (
            "POST",
            "/api/v1/tasks",
            {
                "target_id": str(world.targets["shop1"].id),
                "assignee_ids": [str(world.users["officer1"].id)],
                "due": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
                "note": "专项检查",
                "origin": "manual",
            },
            None,
        ),
    }[name]


BODY_ENDPOINTS = [
    "sign_in",
    "create_target",
    "edit_target",
    "create_squadron",
    "edit_squadron",
    "create_user",
    "edit_user",
    "create_checklist",
    "publish_checklist",
    "create_task",
]


def send(api, name, world, body=None, *, raw=None, content_type="application/json"):
    """Call endpoint ``name`` as ``api`` with ``body`` (JSON) or ``raw`` text; fresh If-Match."""
    method, path, _, etag_path = endpoint(name, world)
    headers = {"If-Match": etag_of(api, etag_path)} if etag_path else {}
    if raw is None:
        raw = json.dumps(body)  # NaN and Infinity go out as the literals a broken client sends
    return api.client.open(
        path,
        method=method,
        data=raw,
        content_type=content_type,
        headers=api._headers(headers),
    )


def at(errors: dict, *keys):
    """The messages at ``errors[k1][k2]...`` (list indexes come back as string keys)."""
    node = errors
    for key in keys:
        assert isinstance(node, dict) and str(key) in node, (keys, errors)
        node = node[str(key)]
    assert isinstance(node, list) and node and all(isinstance(m, str) for m in node), node
    return node


def state(app, world) -> tuple:
    """What a rejected request must not change: record versions, the targets, the audit trail."""
    with app.app_context():
        versions = tuple(
            db.session.scalar(sa.select(model.version).where(model.id == ident))
            for model, ident in (
                (Target, world.targets["shop1"].id),
                (Target, world.targets["site1"].id),
                (Squadron, world.squadrons[0].id),
                (User, world.users["officer2"].id),
                (Checklist, world.checklists["shop"].id),
            )
        )
        counts = tuple(
            db.session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (Target, Squadron, User, ChecklistVersion)
        )
        actions = db.session.scalars(
            sa.select(AuditEntry.action)
            .where(AuditEntry.action != "auth.login")
            .order_by(AuditEntry.seq)
        ).all()
    return versions, counts, actions


# -- bodies that are not a JSON object ---------------------------------------------------------


NOT_AN_OBJECT = {
    "truncated": ("{", "application/json", 400, "malformed_json"),
    "trailing-comma": ('{"name": "x",}', "application/json", 400, "malformed_json"),
    "single-quotes": ("{'name': 'x'}", "application/json", 400, "malformed_json"),
    "trailing-text": ('{"name": "x"} trailing', "application/json", 400, "malformed_json"),
    "invalid-utf8": (b'{"name": "\xff"}', "application/json", 400, "malformed_json"),
    "too-deep-for-the-parser": (
        "[" * 100_000 + "]" * 100_000,
        "application/json",
        400,
        "malformed_json",
    ),
    "nested-100-deep": ("[" * 100 + "]" * 100, "application/json", 400, "malformed_json"),
    "form": ("name=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    "text": ('{"name": "x"}', "text/plain", 415, "unsupported_media_type"),
    "xml": ("<target/>", "application/xml", 415, "unsupported_media_type"),
    "array": ("[]", "application/json", 422, "validation_failed"),
    "array-of-object": ("[{}]", "application/json", 422, "validation_failed"),
    "string": ('"target"', "application/json", 422, "validation_failed"),
    "null": ("null", "application/json", 422, "validation_failed"),
    "number": ("42", "application/json", 422, "validation_failed"),
    "boolean": ("true", "application/json", 422, "validation_failed"),
}
#: Every endpoint gets these; the rest of the table runs against one of them.
ON_EVERY_ENDPOINT = ["truncated", "too-deep-for-the-parser", "text", "array", "null"]


def _not_an_object_cases():
    for name in BODY_ENDPOINTS:
        for case in ON_EVERY_ENDPOINT:
            yield pytest.param(name, case, id=f"{name}-{case}")
    for case in NOT_AN_OBJECT:
        if case not in ON_EVERY_ENDPOINT:
            yield pytest.param("create_target", case, id=f"create_target-{case}")


@pytest.mark.parametrize("name, case", list(_not_an_object_cases()))
def test_body_that_is_not_a_json_object(app, login, world, name, case):
    raw, content_type, status, error = NOT_AN_OBJECT[case]
    admin = login("admin")
    before = state(app, world)
    body = assert_error(send(admin, name, world, raw=raw, content_type=content_type), status, error)
    if status == 422:
        assert at(body["errors"]["json"], "_schema")
    assert state(app, world) == before


@pytest.mark.parametrize("name", BODY_ENDPOINTS)
def test_unknown_fields_are_refused_not_dropped(app, login, world, name):
    admin = login("admin")
    valid = endpoint(name, world)[2]
    before = state(app, world)
    body = assert_error(
        send(admin, name, world, {**valid, "bogus": 1, "Name": "x"}), 422, "validation_failed"
    )
    assert body["errors"]["json"] == {"bogus": ["Unknown field."], "Name": ["Unknown field."]}
    assert state(app, world) == before


@pytest.mark.parametrize(
    "name, body, path",
    [
        ("create_target", {"location": {"lon": 121.4, "lat": 31.3, "alt": 4}}, ("location", "alt")),
        (
            "edit_target",
            {"location": {"lon": 121.4, "lat": 31.3, "crs": "wgs84"}},
            ("location", "crs"),
        ),
        (
            "create_checklist",
            {"items": [{**CHECKLIST_ITEM, "weight": 2}]},
            ("items", 0, "weight"),
        ),
        (
            "publish_checklist",
            {"items": [CHECKLIST_ITEM, {**CHECKLIST_ITEM, "code": "S10", "x": 1}]},
            ("items", 1, "x"),
        ),
    ],
)
def test_unknown_nested_fields_are_refused(login, world, name, body, path):
    admin = login("admin")
    valid = endpoint(name, world)[2]
    answer = assert_error(send(admin, name, world, {**valid, **body}), 422, "validation_failed")
    assert at(answer["errors"]["json"], *path) == ["Unknown field."]


@pytest.mark.parametrize(
    "name, required",
    [
        ("sign_in", {"username", "password", "device_id"}),
        ("create_target", {"kind", "name", "squadron_id", "location"}),
        ("create_squadron", {"name", "district_id", "jurisdiction"}),
        ("create_user", {"username", "name", "role", "password"}),
        ("create_checklist", {"kind", "title", "items"}),
        ("publish_checklist", {"title", "items"}),
        ("create_task", {"target_id", "assignee_ids", "due", "origin"}),
    ],
)
def test_missing_required_fields_are_each_named(app, login, world, name, required):
    admin = login("admin")
    before = state(app, world)
    body = assert_error(send(admin, name, world, {}), 422, "validation_failed")
    assert set(body["errors"]["json"]) == required
    for field in required:
        assert at(body["errors"]["json"], field) == ["Missing data for required field."]
    # Each one missing alone is named alone.
    valid = endpoint(name, world)[2]
    for field in required:
        partial = {k: v for k, v in valid.items() if k != field}
        body = assert_error(send(admin, name, world, partial), 422, "validation_failed")
        assert set(body["errors"]["json"]) == {field}
    assert state(app, world) == before


# -- wrong types and values --------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "name, changes, path",
    [
        ("sign_in", {"username": 5}, ("username",)),
        ("sign_in", {"username": None}, ("username",)),
        ("sign_in", {"device_id": "pad 1/2"}, ("device_id",)),
        ("sign_in", {"password": ["fieldapp-demo"]}, ("password",)),
        ("create_target", {"squadron_id": "1"}, ("squadron_id",)),
        ("create_target", {"squadron_id": 1.5}, ("squadron_id",)),
        ("create_target", {"squadron_id": True}, ("squadron_id",)),
        ("create_target", {"squadron_id": 0}, ("squadron_id",)),
        ("create_target", {"squadron_id": 10**20}, ("squadron_id",)),
        ("create_target", {"location": {"lon": True, "lat": 31.3}}, ("location", "lon")),
        ("create_target", {"location": {"lon": "121.4", "lat": 31.3}}, ("location", "lon")),
        ("create_target", {"location": {"lon": NAN, "lat": 31.3}}, ("location", "lon")),
        ("create_target", {"location": {"lon": INF, "lat": 31.3}}, ("location", "lon")),
        ("create_target", {"location": {"lon": -INF, "lat": 31.3}}, ("location", "lon")),
        ("create_target", {"location": {"lon": 1e300, "lat": 31.3}}, ("location", "lon")),
        ("create_target", {"location": {"lon": 180.0001, "lat": 31.3}}, ("location", "lon")),
        ("create_target", {"location": {"lon": 121.4, "lat": -90.5}}, ("location", "lat")),
        ("create_target", {"location": {"lon": 121.4}}, ("location", "lat")),
        ("create_target", {"location": [121.4, 31.3]}, ("location", "_schema")),
        ("create_target", {"location": "121.4,31.3"}, ("location", "_schema")),
        ("create_target", {"name": 5}, ("name",)),
        ("create_target", {"name": ""}, ("name",)),
        ("create_target", {"name": "店" * 201}, ("name",)),
        ("create_target", {"name": "老王\x00面馆"}, ("name",)),
        ("create_target", {"name": "老王\ud800面馆"}, ("name",)),
        ("create_target", {"kind": "kiosk"}, ("kind",)),
        ("create_target", {"kind": "SHOP"}, ("kind",)),
        ("create_target", {"credit_class": "E"}, ("credit_class",)),
        ("create_target", {"sensitive_surroundings": "yes"}, ("sensitive_surroundings",)),
        ("create_target", {"sensitive_surroundings": 1}, ("sensitive_surroundings",)),
        ("create_target", {"business_type": "Catering!"}, ("business_type",)),
        ("create_target", {"address": {"road": "淞滨路"}}, ("address",)),
        ("edit_target", {"squadron_id": "2"}, ("squadron_id",)),
        ("edit_target", {"location": {"lon": False, "lat": 31.3}}, ("location", "lon")),
        ("edit_target", {"location": None}, ("location",)),
        ("edit_target", {"active": "false"}, ("active",)),
        ("edit_target", {"name": None}, ("name",)),
        ("edit_target", {"credit_class": "a"}, ("credit_class",)),
        ("create_squadron", {"district_id": "1"}, ("district_id",)),
        ("create_squadron", {"district_id": None}, ("district_id",)),
        ("create_squadron", {"name": ["淞南中队"]}, ("name",)),
        ("create_squadron", {"name": "队" * 81}, ("name",)),
        ("edit_squadron", {"name": ""}, ("name",)),
        ("edit_squadron", {"jurisdiction": None}, ("jurisdiction",)),
        ("create_user", {"squadron_id": "1"}, ("squadron_id",)),
        ("create_user", {"squadron_id": 2**31}, ("squadron_id",)),
        ("create_user", {"role": "boss"}, ("role",)),
        ("create_user", {"password": 12345678}, ("password",)),
        ("create_user", {"username": "Officer 9"}, ("username",)),
        ("create_user", {"name": ""}, ("name",)),
        ("edit_user", {"active": "no"}, ("active",)),
        ("edit_user", {"active": 0}, ("active",)),
        ("edit_user", {"squadron_id": "1"}, ("squadron_id",)),
        ("edit_user", {"role": None}, ("role",)),
        ("create_checklist", {"kind": "car"}, ("kind",)),
        ("create_checklist", {"items": "S01"}, ("items",)),
        ("create_checklist", {"items": []}, ("items",)),
        ("create_checklist", {"items": [CHECKLIST_ITEM] * 201}, ("items",)),
        (
            "create_checklist",
            {"items": [{**CHECKLIST_ITEM, "severity": "fatal"}]},
            ("items", 0, "severity"),
        ),
        ("create_checklist", {"items": [{**CHECKLIST_ITEM, "code": 9}]}, ("items", 0, "code")),
        ("create_checklist", {"items": ["S01"]}, ("items", 0, "_schema")),
        ("publish_checklist", {"title": 5}, ("title",)),
        ("publish_checklist", {"items": [{**CHECKLIST_ITEM, "code": "s01"}]}, ("items", 0, "code")),
        ("publish_checklist", {"items": [{**CHECKLIST_ITEM, "text": ""}]}, ("items", 0, "text")),
    ],
)
def test_wrong_types_and_values_are_named_by_field(app, login, world, name, changes, path):
    admin = login("admin")
    valid = endpoint(name, world)[2]
    before = state(app, world)
    body = assert_error(send(admin, name, world, {**valid, **changes}), 422, "validation_failed")
    assert at(body["errors"]["json"], *path)
    assert state(app, world) == before


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "NaN", "Infinity", "-Infinity"])
def test_non_finite_number_literals_are_refused(login, world, literal):
    admin = login("admin")
    raw = json.dumps(shop_payload(world.squadrons[0].id)).replace("121.48", literal)
    body = assert_error(send(admin, "create_target", world, raw=raw), 422, "validation_failed")
    assert at(body["errors"]["json"], "location", "lon")


def test_oversized_body_is_413(login, world):
    body = b'{"name": "' + b"x" * (16 * 1024 * 1024) + b'"}'
    response = login("admin").post("/api/v1/targets", data=body, content_type="application/json")
    assert_error(response, 413, "payload_too_large")


# -- query strings -----------------------------------------------------------------------------

LIST_PATHS = [
    "/api/v1/targets",
    "/api/v1/squadrons",
    "/api/v1/users",
    "/api/v1/devices",
    "/api/v1/checklists",
    "/api/v1/inspections",
    "/api/v1/review/queue",
    "/api/v1/rectifications",
    "/api/v1/tasks",
    "/api/v1/conflicts",
]


BAD_PAGING = [
    ("per_page=0", "per_page"),
    ("per_page=10000", "per_page"),
    ("per_page=201", "per_page"),
    ("per_page=-5", "per_page"),
    ("per_page=1.5", "per_page"),
    ("per_page=", "per_page"),
    ("page=0", "page"),
    ("page=-1", "page"),
    ("page=abc", "page"),
    ("page=99999999999999999999", "page"),
]
#: Every list gets these; the whole table runs against the targets list.
ON_EVERY_LIST = {"per_page=0", "per_page=10000", "page=0", "page=abc"}


def _paging_cases():
    for path in LIST_PATHS:
        for query, param in BAD_PAGING:
            if path == "/api/v1/targets" or query in ON_EVERY_LIST:
                yield pytest.param(path, query, param, id=f"{path.rsplit('/', 1)[1]}-{query}")


@pytest.mark.parametrize("path, query, param", list(_paging_cases()))
def test_bad_paging_is_422(login, world, path, query, param):
    body = assert_error(login("admin").get(f"{path}?{query}"), 422, "validation_failed")
    assert at(body["errors"]["query"], param)


@pytest.mark.parametrize("path", LIST_PATHS)
def test_largest_page_size_is_accepted(login, world, path):
    response = login("admin").get(f"{path}?per_page=200&page=1")
    assert response.status_code == 200
    assert response.get_json()["per_page"] == 200


@pytest.mark.parametrize(
    "query, param",
    [
        ("bbox=121,31,122", "bbox"),
        ("bbox=121,31,122,32,33", "bbox"),
        ("bbox=a,b,c,d", "bbox"),
        ("bbox=", "bbox"),
        ("bbox=122,31,121,32", "bbox"),  # min > max
        ("bbox=121,32,122,31", "bbox"),
        ("bbox=-181,31,122,32", "bbox"),
        ("bbox=121,31,122,91", "bbox"),
        ("bbox=nan,31,122,32", "bbox"),
        ("bbox=121,31,inf,32", "bbox"),
        ("near=121.4,31.3", "near"),
        ("near=121.4,31.3,100,5", "near"),
        ("near=121.4,31.3,0", "near"),
        ("near=121.4,31.3,-100", "near"),
        ("near=121.4,31.3,100000", "near"),
        ("near=181,31.3,100", "near"),
        ("near=121.4,-91,100", "near"),
        ("near=x,y,z", "near"),
        ("near=nan,31.3,100", "near"),
        ("near=121.4,31.3,inf", "near"),
        ("kind=kiosk", "kind"),
        ("squadron_id=abc", "squadron_id"),
        ("squadron_id=0", "squadron_id"),
        ("squadron_id=99999999999999999999", "squadron_id"),
        ("q=", "q"),
        ("q=" + "x" * 101, "q"),
        ("q=%E9%9D%A2%00", "q"),
        ("active=maybe", "active"),
    ],
)
def test_bad_target_filters_are_422(login, world, query, param):
    body = assert_error(login("admin").get(f"/api/v1/targets?{query}"), 422, "validation_failed")
    assert at(body["errors"]["query"], param)


@pytest.mark.parametrize(
    "path, param",
    [
        ("/api/v1/checklists?kind=car", "kind"),
        ("/api/v1/checklists/{checklist}?version=0", "version"),
        ("/api/v1/checklists/{checklist}?version=-1", "version"),
        ("/api/v1/checklists/{checklist}?version=abc", "version"),
        ("/api/v1/checklists/{checklist}?version=99999999999999999999", "version"),
        ("/api/v1/users?role=boss", "role"),
        ("/api/v1/users?squadron_id=abc", "squadron_id"),
        ("/api/v1/users?squadron_id=99999999999999999999", "squadron_id"),
    ],
)
def test_bad_query_parameters_are_422(login, world, path, param):
    path = path.format(checklist=world.checklists["shop"].id)
    body = assert_error(login("admin").get(path), 422, "validation_failed")
    assert at(body["errors"]["query"], param)


#: Every query parameter API.md names, on the endpoints it names them for (with a valid value).
CONTRACT_QUERIES = [
    "/api/v1/sync/pull?limit=10",
    "/api/v1/conflicts?status=open&kind=field&record_id={inspection}",
    "/api/v1/targets?kind=shop&squadron_id={squadron}&level=low&q=水果&page=1&per_page=5",
    "/api/v1/targets?bbox=121.0,31.0,122.0,32.0",
    "/api/v1/targets?near=121.48,31.40,500",
    "/api/v1/risk/summary?kind=shop&squadron_id={squadron}",
    "/api/v1/schedule/due?squadron_id={squadron}&on=2026-12-01",
    "/api/v1/draws?squadron_id={squadron}",
    "/api/v1/public/inspections?from=2026-01-01&to=2026-12-31&kind=shop",
    "/api/v1/inspections?squadron_id={squadron}&target_id={target}&officer_id={officer}"
    "&status=submitted&review_status=pending&from=2026-01-01&to=2026-12-31&page=1",
    "/api/v1/review/queue?squadron_id={squadron}",
    "/api/v1/audit?entity=inspection&record_id={inspection}&actor_id={officer}"
    "&from=2026-01-01T00:00:00%2B08:00&to=2026-12-31T00:00:00%2B08:00",
    "/api/v1/reports/monthly?month=2026-11&squadron_id={squadron}&format=json",
]


def _contract_query(path: str, world) -> str:
    return path.format(
        squadron=world.squadrons[0].id,
        target=world.targets["shop1"].id,
        officer=world.users["officer1"].id,
        inspection=ZERO_UUID,
    )


@pytest.mark.parametrize("path", CONTRACT_QUERIES)
def test_every_query_parameter_of_the_contract_is_taken(login, world, path):
    """Refusing unknown parameters must not refuse one API.md names."""
    response = login("admin").get(_contract_query(path, world))
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize(
    "path, param",
    [
        ("/api/v1/inspections?squadorn_id={squadron}", "squadorn_id"),
        ("/api/v1/targets?kind=shop&lvl=high", "lvl"),
        ("/api/v1/sync/pull?limt=5", "limt"),
        ("/api/v1/conflicts?state=open", "state"),
        ("/api/v1/audit?actor={officer}", "actor"),
        ("/api/v1/users?rol=leader", "rol"),
        ("/api/v1/photos/{inspection}?sise=thumb", "sise"),
    ],
)
def test_a_misspelt_query_parameter_is_refused_not_ignored(login, world, path, param):
    """A misspelt filter would otherwise answer with everything, unfiltered: it is a 422 that
    names the parameter, as an unknown JSON field is."""
    response = login("admin").get(_contract_query(path, world))
    body = assert_error(response, 422, "validation_failed")
    assert body["errors"]["query"][param] == ["Unknown field."]


@pytest.mark.parametrize(
    "method, path, param",
    [
        ("GET", "/api/v1/targets/{target}?include=risk", "include"),
        ("GET", "/api/v1/targets/{target}/risk?page=2", "page"),
        ("GET", "/api/v1/me?verbose=1", "verbose"),
        ("POST", "/api/v1/sync/push?dry_run=1", "dry_run"),
    ],
)
def test_a_query_parameter_sent_where_none_is_read_is_refused(login, world, method, path, param):
    """An operation that reads no query string does not answer as if a filter, a page or a
    switch it was sent had been applied: ``?page=2`` of a target's risk, which is not paged, would
    otherwise give page one again, and ``?dry_run=1`` would store the batch."""
    api = login("officer1")
    url = _contract_query(path, world)
    body = {"device_id": api.device_id, "changes": []} if method == "POST" else None
    response = api.client.open(url, method=method, json=body, headers=api._headers(None))
    assert_error(response, 422, "validation_failed")
    assert response.get_json()["errors"]["query"] == {param: ["Unknown field."]}


def test_cache_busters_are_ignored_where_no_query_is_read(login, world):
    response = login("officer1").get(f"/api/v1/targets/{world.targets['shop1'].id}?_=1733380000")
    assert response.status_code == 200


def test_cache_busting_parameters_are_ignored(login, world):
    """``?_=<timestamp>`` (what browsers' HTTP libraries add to defeat caches) means nothing."""
    api = login("leader1")
    plain = api.get("/api/v1/targets?kind=shop").get_json()
    busted = api.get("/api/v1/targets?kind=shop&_=1733380000123").get_json()
    assert busted == plain
    assert api.get("/api/v1/sync/pull?limit=5&_cb=7").status_code == 200


# -- ids in paths ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/v1/targets/not-a-uuid"),
        ("GET", "/api/v1/targets/12345"),
        ("GET", "/api/v1/targets/00000000-0000-4000-8000-00000000000g"),
        ("GET", "/api/v1/targets/00000000-0000-4000-8000-0000000000001"),
        ("GET", f"/api/v1/targets/{ZERO_UUID}"),
        ("PATCH", "/api/v1/targets/not-a-uuid"),
        ("PATCH", f"/api/v1/targets/{ZERO_UUID}"),
        ("GET", "/api/v1/targets/by-code/%00"),
        ("GET", "/api/v1/targets/by-code/" + "S" * 5000),
        ("GET", "/api/v1/users/not-a-uuid"),
        ("GET", "/api/v1/users/1"),
        ("GET", f"/api/v1/users/{ZERO_UUID}"),
        ("PATCH", "/api/v1/users/not-a-uuid"),
        ("PATCH", f"/api/v1/users/{ZERO_UUID}"),
        ("GET", "/api/v1/squadrons/abc"),
        ("GET", "/api/v1/squadrons/-1"),
        ("GET", "/api/v1/squadrons/1.5"),
        ("GET", "/api/v1/squadrons/0"),
        ("GET", "/api/v1/squadrons/9999"),
        ("GET", "/api/v1/squadrons/2147483648"),
        ("GET", "/api/v1/squadrons/99999999999999999999"),
        ("PATCH", "/api/v1/squadrons/abc"),
        ("PATCH", "/api/v1/squadrons/99999999999999999999"),
        ("GET", "/api/v1/checklists/abc"),
        ("GET", "/api/v1/checklists/9999"),
        ("GET", "/api/v1/checklists/99999999999999999999"),
        ("POST", "/api/v1/checklists/abc/versions"),
        ("POST", "/api/v1/checklists/9999/versions"),
        ("POST", "/api/v1/checklists/99999999999999999999/versions"),
        ("POST", "/api/v1/devices/%00/revoke"),
        ("POST", "/api/v1/devices/no-such-pad/reinstate"),
        ("GET", "/api/v1/inspections/not-a-uuid"),
        ("GET", f"/api/v1/inspections/{ZERO_UUID}"),
        ("POST", f"/api/v1/inspections/{ZERO_UUID}/review"),
        ("GET", "/api/v1/tasks/not-a-uuid"),
        ("GET", f"/api/v1/tasks/{ZERO_UUID}"),
        ("POST", f"/api/v1/tasks/{ZERO_UUID}/cancel"),
    ],
)
def test_bad_or_unknown_ids_in_paths_are_404(login, world, method, path):
    admin = login("admin")
    body = {"title": "x", "items": [CHECKLIST_ITEM]} if path.endswith("versions") else {}
    body = {"decision": "approve"} if path.endswith("review") else body
    body = {"reason": "x"} if path.endswith("cancel") else body
    response = admin.client.open(
        path, method=method, json=body, headers=admin._headers({"If-Match": '"x"'})
    )
    assert_error(response, 404, "not_found")


# -- GeoJSON -----------------------------------------------------------------------------------


def polygon(*ring, **extra) -> dict:
    return {"type": "Polygon", "coordinates": [list(map(list, ring))], **extra}


A, B, C, D = (121.40, 31.30), (121.45, 31.30), (121.45, 31.35), (121.40, 31.35)

BAD_POLYGONS = {
    "bow-tie": polygon(A, C, B, D, A),
    "unclosed-ring": polygon(A, B, C, D),
    "lon-out-of-range": polygon(A, (181.0, 31.30), C, D, A),
    "lat-out-of-range": polygon(A, B, (121.45, 91.0), D, A),
    "point": {"type": "Point", "coordinates": [121.40, 31.30]},
    "linestring": {"type": "LineString", "coordinates": [A, B, C]},
    "lowercase-type": {"type": "polygon", "coordinates": [[A, B, C, D, A]]},
    "no-type": {"coordinates": [[A, B, C, D, A]]},
    "ring-with-3-positions": polygon(A, B, A),
    "extra-member": polygon(A, B, C, D, A, properties={"name": "吴淞"}),
    "feature-not-geometry": {"type": "Feature", "geometry": polygon(A, B, C, D, A)},
    "no-area": polygon(A, B, (121.50, 31.30), A),
    "hole-outside-shell": {
        "type": "Polygon",
        "coordinates": [
            [A, B, C, D, A],
            [[121.6, 31.6], [121.7, 31.6], [121.7, 31.7], [121.6, 31.6]],
        ],
    },
    "string-positions": polygon(*[(str(x), str(y)) for x, y in (A, B, C, D, A)]),
    "boolean-position": polygon(A, (True, 31.3), C, D, A),
    "position-with-one-number": polygon(A, (121.45,), C, D, A),
    "nan-coordinate": polygon(A, (float("nan"), 31.30), C, D, A),
    "infinite-coordinate": polygon(A, (float("inf"), 31.30), C, D, A),
    "empty-coordinates": {"type": "Polygon", "coordinates": []},
    "no-coordinates": {"type": "Polygon"},
    "coordinates-not-a-list": {"type": "Polygon", "coordinates": "121.4 31.3"},
    "wkt-string": "POLYGON((121.40 31.30, 121.45 31.30, 121.45 31.35, 121.40 31.30))",
    "list": [[A, B, C, D, A]],
}


#: The shapes API.md names are tried everywhere a polygon is accepted; the rest on creates.
NAMED_IN_THE_CONTRACT = [
    "bow-tie",
    "unclosed-ring",
    "lon-out-of-range",
    "lat-out-of-range",
    "point",
    "ring-with-3-positions",
    "extra-member",
]
PLACES = ["create_site", "edit_site", "create_squadron", "edit_squadron"]


def _geojson_cases():
    for shape in BAD_POLYGONS:
        places = PLACES if shape in NAMED_IN_THE_CONTRACT else ["create_site", "create_squadron"]
        for where in places:
            yield pytest.param(where, shape, id=f"{where}-{shape}")


@pytest.mark.parametrize("where, shape", list(_geojson_cases()))
def test_bad_geojson_is_refused_and_changes_nothing(app, login, world, where, shape):
    admin = login("admin")
    geometry = BAD_POLYGONS[shape]
    site = f"/api/v1/targets/{world.targets['site1'].id}"
    squadron = f"/api/v1/squadrons/{world.squadrons[0].id}"
    field, method, path, body, etag_path = {
        "create_site": (
            "boundary",
            "POST",
            "/api/v1/targets",
            site_payload(world.squadrons[1].id, boundary=geometry),
            None,
        ),
        "edit_site": ("boundary", "PATCH", site, {"boundary": geometry}, site),
        "create_squadron": (
            "jurisdiction",
            "POST",
            "/api/v1/squadrons",
            {"name": "淞南中队", "district_id": world.district.id, "jurisdiction": geometry},
            None,
        ),
        "edit_squadron": ("jurisdiction", "PATCH", squadron, {"jurisdiction": geometry}, squadron),
    }[where]
    before = state(app, world)
    squadrons = admin.get("/api/v1/squadrons").get_json()["items"]
    headers = {"If-Match": etag_of(admin, etag_path)} if etag_path else {}
    response = admin.client.open(
        path,
        method=method,
        data=json.dumps(body),
        content_type="application/json",
        headers=admin._headers(headers),
    )
    answer = assert_error(response, 422, "validation_failed")
    assert set(answer["errors"]["json"]) == {field}
    assert at(answer["errors"]["json"], field)
    assert state(app, world) == before
    assert admin.get("/api/v1/squadrons").get_json()["items"] == squadrons


def test_site_boundary_is_one_polygon_not_many(login, world):
    multi = {"type": "MultiPolygon", "coordinates": [square(121.455, 31.355, 0.01)["coordinates"]]}
    body = assert_error(
        login("admin").post(
            "/api/v1/targets", json=site_payload(world.squadrons[0].id, boundary=multi)
        ),
        422,
        "validation_failed",
    )
    assert at(body["errors"]["json"], "boundary")


def test_bow_tie_message_says_why(login, world):
    body = assert_error(
        login("admin").post(
            "/api/v1/squadrons",
            json={
                "name": "淞南中队",
                "district_id": world.district.id,
                "jurisdiction": BAD_POLYGONS["bow-tie"],
            },
        ),
        422,
        "validation_failed",
    )
    assert "self-intersection" in body["errors"]["json"]["jurisdiction"][0].lower()


# -- routes, methods and tokens ----------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/api/v1/nope", 404),
        ("GET", "/api/v1/targets/", 404),
        ("GET", "/api/v2/targets", 404),
        ("GET", "/api/v1", 404),
        ("GET", "/nope", 404),
        ("GET", "/favicon.ico", 404),
        ("POST", "/nope/deeper/still", 404),
        ("DELETE", "/api/v1/targets", 405),
        ("PUT", "/api/v1/targets", 405),
        ("PUT", "/api/v1/targets/{shop1}", 405),
        ("DELETE", "/api/v1/targets/{shop1}", 405),
        ("POST", "/api/v1/targets/by-code/ABC", 405),
        ("POST", "/api/v1/me", 405),
        ("GET", "/api/v1/auth/token", 405),
        ("PATCH", "/api/v1/squadrons", 405),
        ("DELETE", "/api/v1/checklists/1", 405),
        ("GET", "/api/v1/devices/pad/revoke", 405),
        ("POST", "/api/v1/openapi.json", 405),
        ("POST", "/api/v1/health", 405),
        ("POST", "/", 405),
        ("DELETE", "/", 405),
    ],
)
def test_unknown_routes_and_wrong_methods_get_the_envelope(client, world, method, path, status):
    path = path.format(shop1=world.targets["shop1"].id)
    response = client.open(path, method=method)  # no token: routing answers before auth
    body = assert_error(response, status, "not_found" if status == 404 else "method_not_allowed")
    assert response.content_type == "application/json"
    assert body["errors"] == {}  # API.md: every error has the whole body
    if status == 405:
        assert method not in response.headers["Allow"]
        assert response.headers["Allow"]


PROTECTED = [
    ("GET", "/api/v1/me"),
    ("DELETE", "/api/v1/auth/token"),
    ("GET", "/api/v1/targets"),
    ("POST", "/api/v1/targets"),
    ("GET", "/api/v1/targets/{shop1}"),
    ("PATCH", "/api/v1/targets/{shop1}"),
    ("GET", "/api/v1/targets/by-code/{code}"),
    ("GET", "/api/v1/squadrons"),
    ("POST", "/api/v1/squadrons"),
    ("GET", "/api/v1/squadrons/{squadron}"),
    ("PATCH", "/api/v1/squadrons/{squadron}"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users/{user}"),
    ("PATCH", "/api/v1/users/{user}"),
    ("GET", "/api/v1/devices"),
    ("POST", "/api/v1/devices/dev-officer1/revoke"),
    ("POST", "/api/v1/devices/dev-officer1/reinstate"),
    ("GET", "/api/v1/checklists"),
    ("POST", "/api/v1/checklists"),
    ("GET", "/api/v1/checklists/{checklist}"),
    ("POST", "/api/v1/checklists/{checklist}/versions"),
    ("GET", "/api/v1/inspections"),
    ("GET", f"/api/v1/inspections/{ZERO_UUID}"),
    ("POST", f"/api/v1/inspections/{ZERO_UUID}/review"),
    ("GET", "/api/v1/review/queue"),
    ("GET", "/api/v1/rectifications"),
    ("GET", "/api/v1/tasks"),
    ("POST", "/api/v1/tasks"),
    ("GET", f"/api/v1/tasks/{ZERO_UUID}"),
    ("POST", f"/api/v1/tasks/{ZERO_UUID}/cancel"),
]


@pytest.mark.parametrize("method, path", PROTECTED)
def test_every_endpoint_needs_a_token_before_anything_else(client, world, method, path):
    path = path.format(
        shop1=world.targets["shop1"].id,
        code=world.targets["shop1"].code,
        squadron=world.squadrons[0].id,
        user=world.users["officer1"].id,
        checklist=world.checklists["shop"].id,
    )
    # Even a broken body is not looked at before the caller is known.
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = client.open(
            path, method=method, data="{", content_type="application/json", headers=headers
        )
        assert_error(response, 401, "unauthenticated")
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_signed_in_callers_get_the_same_routing_errors(login, world):
    officer = login("officer1")
    assert_error(officer.get("/api/v1/nope"), 404, "not_found")
    assert_error(officer.get("/nope"), 404, "not_found")
    response = officer.delete("/api/v1/targets")
    assert_error(response, 405, "method_not_allowed")
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


@pytest.mark.parametrize(
    "authorization", ["Basic b2ZmaWNlcjE6eA==", "Bearer ", "Bearer", "bearer  x y", "Token abc"]
)
def test_odd_authorization_headers_are_401(client, world, authorization):
    response = client.get("/api/v1/me", headers={"Authorization": authorization})
    assert_error(response, 401, "unauthenticated")


def test_a_client_request_id_is_echoed_and_a_bad_one_replaced(client, world):
    response = client.get("/api/v1/nope", headers={"X-Request-ID": "pad-7:0001"})
    assert response.headers["X-Request-ID"] == "pad-7:0001"
    response = client.get("/api/v1/nope", headers={"X-Request-ID": "bad id with spaces"})
    assert response.headers["X-Request-ID"] != "bad id with spaces"
    assert response.headers["X-Request-ID"]


# -- constraints the checks before them did not foresee --------------------------------------


def test_constraint_violations_are_told_apart_in_api_codes(ctx, world):
    """A primary key taken is ``id_conflict`` (that id holds another record: sending the same
    again cannot pass); another unique value or a reference to nothing is ``version_conflict``
    (the data moved under the request), on both databases, whose errors read differently.
    (tests/test_squadrons.py has one reach a client.)"""
    import uuid

    from sqlalchemy.exc import IntegrityError

    from fieldapp.web.requests import integrity_error
    from sync.models import RecordVersion, Tombstone
    from tests.conftest import NO_SUCH_ID

    record_id = uuid.uuid4()

    def tombstone(squadron_id: int) -> sa.Insert:
        return sa.insert(Tombstone.__table__).values(
            entity="inspection",
            record_id=record_id,
            squadron_id=squadron_id,
            change_seq=1,
            version=2,
        )

    def version() -> sa.Insert:
        return sa.insert(RecordVersion.__table__).values(
            entity="inspection", record_id=record_id, version=1, data={}, changed=[]
        )

    def answer(statement: sa.Insert) -> str:
        try:
            with db.session.begin_nested():
                db.session.execute(statement)
        except IntegrityError as exc:
            error = integrity_error(exc)
            assert error.code == 409
            return error.error
        raise AssertionError("no constraint refused it")

    db.session.execute(tombstone(world.squadrons[0].id))
    db.session.execute(version())
    assert answer(tombstone(world.squadrons[0].id)) == "id_conflict"
    assert answer(version()) == "version_conflict"
    record_id = uuid.uuid4()
    assert answer(tombstone(NO_SUCH_ID)) == "version_conflict"


# -- failures that are not the caller's ----------------------------------------------------------


def test_an_unexpected_error_is_logged_with_the_request_id_user_and_device(
    login, world, caplog, monkeypatch
):
    """The traceback of a 500 is the log line an operator reads first: it names the request,
    the user and the device, as every request's line does; the caller gets the envelope."""
    from fieldapp.auth import views

    officer = login("officer1", "pad-77")

    def broken(self):
        raise RuntimeError("a bug")

    monkeypatch.setattr(views.MeResource, "get", broken)
    with caplog.at_level(logging.INFO, logger="fieldapp.request"):
        response = officer.get("/api/v1/me", headers={"X-Request-ID": "pad-77:0500"})
    assert_error(response, 500, "internal_error")
    assert "a bug" not in response.get_data(as_text=True)
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert (error.request_id, error.user, error.device) == ("pad-77:0500", "officer1", "pad-77")
    assert error.exc_info and "a bug" in str(error.exc_info[1])


def _failing_commit(monkeypatch, exc: Exception) -> None:
    """The request's commit fails with ``exc`` (once), as when the database goes away between
    the view's work and the commit."""
    from sqlalchemy.orm import Session

    original = Session.commit
    failed = []

    def commit(self):
        if not failed:
            failed.append(exc)
            raise exc
        return original(self)

    monkeypatch.setattr(Session, "commit", commit)


@pytest.mark.parametrize(
    "exc",
    [
        sa.exc.OperationalError(
            "COMMIT", {}, Exception("server closed the connection unexpectedly")
        ),
        sa.exc.InterfaceError(
            "COMMIT", {}, Exception("connection already closed"), connection_invalidated=True
        ),
    ],
    ids=["operational", "disconnect"],
)
def test_a_database_that_goes_away_at_commit_answers_503(
    app, login, world, monkeypatch, caplog, exc
):
    """The commit is where a restarting PostgreSQL (or an SQLite lock not granted) meets most
    requests: 503 ``database_unavailable`` with ``Retry-After``, which devices retry, and one
    error line naming the request, not a 500 and a traceback."""
    officer = login("officer1", "pad-77")
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    _failing_commit(monkeypatch, exc)
    with caplog.at_level(logging.INFO, logger="fieldapp"):
        response = officer.delete("/api/v1/auth/token", headers={"X-Request-ID": "pad-77:0503"})
    assert_error(response, 503, "database_unavailable")
    assert response.headers["Retry-After"] == "5"
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.exc_info is None
    assert (error.request_id, error.user, error.device) == ("pad-77:0503", "officer1", "pad-77")
    assert "connection" in error.getMessage()


def test_a_lost_connection_met_inside_a_view_answers_503(login, world, monkeypatch):
    """Not only the driver's OperationalError: any driver error SQLAlchemy took for a lost
    connection (psycopg's "connection already closed" is an InterfaceError)."""
    from fieldapp.auth import views

    officer = login("officer1", "pad-77")

    def connection_lost(self):
        raise sa.exc.InterfaceError(
            "SELECT", {}, Exception("connection already closed"), connection_invalidated=True
        )

    monkeypatch.setattr(views.MeResource, "get", connection_lost)
    response = officer.get("/api/v1/me")
    assert_error(response, 503, "database_unavailable")
    assert response.headers["Retry-After"] == "5"


def test_an_error_at_commit_is_logged_with_the_request_id_user_and_device(
    app, login, world, monkeypatch, caplog
):
    """A bug that surfaces at the request's commit is a 500 like any other: its traceback is
    logged once, with the request id, the user and the device (left to Flask it was logged with
    none of the three)."""
    officer = login("officer1", "pad-77")
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    _failing_commit(monkeypatch, RuntimeError("a bug at commit"))
    with caplog.at_level(logging.INFO, logger="fieldapp"):
        response = officer.delete("/api/v1/auth/token", headers={"X-Request-ID": "pad-77:0501"})
    assert_error(response, 500, "internal_error")
    assert "a bug" not in response.get_data(as_text=True)
    tracebacks = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert [(r.request_id, r.user, r.device) for r in tracebacks] == [
        ("pad-77:0501", "officer1", "pad-77")
    ]
    assert "a bug at commit" in str(tracebacks[0].exc_info[1])
    # Nothing was kept: the token still signs in.
    assert officer.get("/api/v1/me").status_code == 200


def test_health_answers_503_while_the_database_cannot_be_reached(tmp_path, monkeypatch, caplog):
    """For load balancers: 503 means "not now, elsewhere", in the API.md envelope, and the log
    says why; a 500 would also mean a bug. The database here: a port nobody listens on."""
    import socket

    from fieldapp import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("FIELDAPP_INSTANCE_PATH", str(tmp_path))
    app = create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"postgresql+psycopg://x@127.0.0.1:{port}/x"}
    )
    with caplog.at_level(logging.INFO, logger="fieldapp.request"):
        response = app.test_client().get("/api/v1/health", headers={"X-Request-ID": "lb-1"})
    body = assert_error(response, 503, "database_unavailable")
    assert body["message"] == "the database cannot be reached"
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.request_id == "lb-1" and "Connection refused" in warning.getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    with app.app_context():
        db.engine.dispose()


def test_any_request_answers_503_while_the_database_cannot_be_reached(
    tmp_path, monkeypatch, caplog
):
    """Not a 500 (a bug) with a traceback per request: 503 ``database_unavailable`` with
    ``Retry-After``, which devices retry, and one error line with the request id and why."""
    import socket

    from fieldapp import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("FIELDAPP_INSTANCE_PATH", str(tmp_path))
    app = create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"postgresql+psycopg://x@127.0.0.1:{port}/x"}
    )
    with caplog.at_level(logging.INFO, logger="fieldapp.request"):
        response = app.test_client().get(
            "/api/v1/me", headers={"Authorization": "Bearer abc", "X-Request-ID": "pad-1:7"}
        )
        signing_in = app.test_client().post(
            "/api/v1/auth/token",
            json={"username": "officer1", "password": "x", "device_id": "pad-1"},
        )
    assert_error(response, 503, "database_unavailable")
    assert response.headers["Retry-After"] == "5"
    assert_error(signing_in, 503, "database_unavailable")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and all(r.exc_info is None for r in errors)  # one line each, no traceback
    assert errors[0].request_id == "pad-1:7" and "Connection refused" in errors[0].getMessage()
    with app.app_context():
        db.engine.dispose()


def test_health_answers_ok_while_the_database_answers(client, world):
    response = client.get("/api/v1/health")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
