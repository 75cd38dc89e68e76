"""The OpenAPI document and the browsable docs: served without a token, valid OpenAPI 3.0, and
telling a device developer what each operation takes and every answer it can give."""

from __future__ import annotations

import json
import re
import uuid
from html.parser import HTMLParser

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_openapi

from fieldapp.risk.defaults import DEFAULT_SETTINGS
from schemas.sync import ENTITIES, OPS
from sync.hlc import HLC
from tests.conftest import patch_settings

PATHS = [
    "/api/v1/auth/token",
    "/api/v1/me",
    "/api/v1/targets",
    "/api/v1/targets/{target_id}",
    "/api/v1/targets/by-code/{code}",
    "/api/v1/squadrons",
    "/api/v1/squadrons/{squadron_id}",
    "/api/v1/districts/{district_id}/jurisdictions",
    "/api/v1/users",
    "/api/v1/users/{user_id}",
    "/api/v1/devices/{device_id}/revoke",
    "/api/v1/checklists",
    "/api/v1/checklists/{checklist_id}",
    "/api/v1/checklists/{checklist_id}/versions",
]


@pytest.fixture
def spec(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.content_type.startswith("application/json")
    return json.loads(response.get_data(as_text=True))


def test_openapi_document_is_public_json(spec):
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "fieldapp"


@pytest.mark.parametrize("path", PATHS)
def test_openapi_lists_the_paths(spec, path):
    assert path in spec["paths"]


def test_targets_operations_are_documented(spec):
    assert {"get", "post"} <= set(spec["paths"]["/api/v1/targets"])
    assert {"get", "patch"} <= set(spec["paths"]["/api/v1/targets/{target_id}"])
    params = {p["name"] for p in spec["paths"]["/api/v1/targets"]["get"]["parameters"]}
    assert {"kind", "squadron_id", "q", "bbox", "near", "page", "per_page"} <= params


def test_sign_in_is_documented_as_needing_no_token(spec):
    assert spec["security"] == [{"bearer": []}]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert spec["paths"]["/api/v1/auth/token"]["post"]["security"] == []
    assert "security" not in spec["paths"]["/api/v1/targets"]["get"]  # the default: bearer


def test_error_envelope_is_documented(spec):
    error = spec["components"]["schemas"]["Error"]["properties"]
    assert {"code", "status", "error", "message", "errors"} <= set(error)


def test_every_reference_resolves(spec):
    refs = set()
    stack = [spec]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.add(node["$ref"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    assert refs
    for ref in refs:
        assert ref.startswith("#/")
        node = spec
        for part in ref[2:].split("/"):
            assert part in node, ref
            node = node[part]


def test_docs_page_is_public_html(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert response.content_type.startswith("text/html")
    assert "openapi.json" in response.get_data(as_text=True)


def test_service_index_points_at_the_docs(client):
    body = client.get("/").get_json()
    assert body["openapi"] == "/api/v1/openapi.json"
    assert body["docs"] == "/api/v1/docs"


def test_the_document_is_valid_openapi(spec):
    validate_openapi(spec)  # raises, naming the first problem


def resolved(spec, node: dict) -> dict:
    """``node`` with its ``$ref`` (if any) followed."""
    while "$ref" in node:
        target = spec
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield method, path, operation


# -- error answers -------------------------------------------------------------------------------

#: Error answers API.md names (or the code behind it gives), by operation.
DOCUMENTED_ERRORS = [
    ("post", "/api/v1/auth/token", "401"),  # wrong password
    ("post", "/api/v1/auth/token", "403"),  # a revoked device
    ("post", "/api/v1/auth/token", "429"),  # more than 5 failures
    ("get", "/api/v1/me", "401"),  # revoked or expired token
    ("delete", "/api/v1/auth/token", "401"),
    ("post", "/api/v1/sync/push", "413"),  # more than 500 changes
    ("post", "/api/v1/sync/push", "403"),  # device_id not the token's
    ("post", "/api/v1/sync/push", "400"),  # not JSON
    ("post", "/api/v1/sync/push", "415"),  # not sent as JSON
    ("get", "/api/v1/sync/pull", "422"),  # a foreign cursor
    # out-of-scope reads
    ("get", "/api/v1/targets/{target_id}", "404"),
    ("get", "/api/v1/targets/by-code/{code}", "404"),
    ("get", "/api/v1/targets/{target_id}/risk", "404"),
    ("get", "/api/v1/inspections/{inspection_id}", "404"),
    ("get", "/api/v1/inspections/{inspection_id}/history", "404"),
    ("get", "/api/v1/inspections/{inspection_id}/checks", "404"),
    ("get", "/api/v1/draws/{draw_id}", "404"),
    ("get", "/api/v1/photos/{photo_id}", "404"),
    ("post", "/api/v1/conflicts/{conflict_id}/resolve", "404"),
    ("get", "/api/v1/reports/monthly", "404"),  # another squadron's
    # out-of-scope writes, and roles that may not
    ("post", "/api/v1/targets", "403"),
    ("patch", "/api/v1/targets/{target_id}", "403"),
    ("post", "/api/v1/draws", "403"),  # leader or admin
    ("post", "/api/v1/tasks", "403"),
    ("post", "/api/v1/conflicts/{conflict_id}/resolve", "403"),
    ("post", "/api/v1/inspections/{inspection_id}/review", "403"),
    ("post", "/api/v1/devices/{device_id}/revoke", "403"),  # an admin revokes
    ("get", "/api/v1/audit", "403"),  # supervisor, admin
    ("get", "/api/v1/audit/verify", "403"),
    ("patch", "/api/v1/risk/settings", "403"),
    ("post", "/api/v1/districts", "403"),  # an admin adds
    ("post", "/api/v1/supervision/orders", "403"),
    # conflicts and preconditions
    ("post", "/api/v1/conflicts/{conflict_id}/resolve", "409"),
    ("post", "/api/v1/inspections/{inspection_id}/review", "409"),
    ("post", "/api/v1/inspections/{inspection_id}/review", "428"),
    ("post", "/api/v1/tasks/{task_id}/cancel", "409"),
    ("patch", "/api/v1/targets/{target_id}", "428"),  # If-Match missing
    ("patch", "/api/v1/targets/{target_id}", "412"),  # If-Match stale
    ("patch", "/api/v1/risk/settings", "428"),
    ("patch", "/api/v1/risk/settings", "412"),
    ("patch", "/api/v1/checklists/{checklist_id}", "428"),
    ("patch", "/api/v1/checklists/{checklist_id}", "412"),
    # photo uploads
    ("put", "/api/v1/photos/{photo_id}", "400"),  # digest_mismatch
    ("put", "/api/v1/photos/{photo_id}", "409"),  # id_conflict
    ("put", "/api/v1/photos/{photo_id}", "413"),
    ("put", "/api/v1/photos/{photo_id}", "415"),  # not an image
    ("put", "/api/v1/photos/{photo_id}", "422"),  # bad_image
    ("patch", "/api/v1/photos/{photo_id}", "404"),  # nothing to resume
    ("patch", "/api/v1/photos/{photo_id}", "409"),  # offset_mismatch
    ("patch", "/api/v1/photos/{photo_id}", "413"),
    ("patch", "/api/v1/photos/{photo_id}", "415"),
]


@pytest.mark.parametrize(
    "method, path, code", DOCUMENTED_ERRORS, ids=[f"{m} {p} {c}" for m, p, c in DOCUMENTED_ERRORS]
)
def test_the_error_answers_of_api_md_are_documented(spec, method, path, code):
    """Not only under `default`: a device developer reads each operation's list of answers."""
    responses = spec["paths"][path][method]["responses"]
    assert code in responses, sorted(responses)


def test_every_error_answer_documents_the_envelope(spec):
    for method, path, operation in operations(spec):
        for code, response in operation["responses"].items():
            if code == "default" or int(code) >= 400:
                response = resolved(spec, response)
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, code)


def test_every_error_answer_names_its_machine_code(spec):
    """The description of each error answer starts from the body's `error` a client branches on
    (in backquotes), e.g. `not_found`."""
    for method, path, operation in operations(spec):
        for code, response in operation["responses"].items():
            if code != "default" and int(code) >= 400:
                description = resolved(spec, response)["description"]
                assert re.search(r"`[a-z_]+`", description), (method, path, code, description)


def test_sign_in_documents_the_wait_after_too_many_failures(spec):
    answer = resolved(spec, spec["paths"]["/api/v1/auth/token"]["post"]["responses"]["429"])
    assert answer["headers"]["Retry-After"]["schema"]["type"] == "integer"
    assert "rate_limited" in answer["description"]


def test_a_forbidden_write_says_who_may(spec):
    answer = spec["paths"]["/api/v1/targets/{target_id}"]["patch"]["responses"]["403"]
    assert "only the squadron's leader or an admin may edit this target" in answer["description"]
    push = spec["paths"]["/api/v1/sync/push"]["post"]["responses"]
    assert "device_id" in push["403"]["description"]
    assert "500 changes" in push["413"]["description"]


def _anonymous_call(client, method: str, path: str):
    concrete = re.sub(r"\{[a-z_]+_id\}", str(uuid.uuid4()), path).replace("{code}", "X1")
    # integer ids
    concrete = re.sub(r"/(checklists|squadrons|districts)/[0-9a-f-]{36}", r"/\1/1", concrete)
    return client.open(concrete, method=method.upper())


def test_what_needs_a_token_documents_401_and_what_is_public_needs_none(client, spec):
    """Every operation but those documented with no security answers 401 to a caller without a
    token, and documents it; the public ones answer such a caller (sign-in's 401 is for a wrong
    password, not for a missing token)."""
    for method, path, operation in operations(spec):
        response = _anonymous_call(client, method, path)
        if operation.get("security") == []:
            assert response.status_code != 401, (method, path)
        else:
            assert response.status_code == 401, (method, path, response.status_code)
            assert "401" in operation["responses"], (method, path)


def test_only_operations_on_a_named_record_document_404(spec):
    """404 is for a path that names a record (unknown or out of scope), and for the filters
    that name one outside the caller's scope."""
    named_by_query = {("get", "/api/v1/tracks"), ("get", "/api/v1/reports/monthly")}
    for method, path, operation in operations(spec):
        names_one = "{" in path or (method, path) in named_by_query
        assert ("404" in operation["responses"]) == names_one, (method, path)


# -- what operations take ------------------------------------------------------------------------


def test_the_push_change_is_documented(spec):
    """The body of the most important request: each change, field by field (the server still
    takes the list as it comes and refuses a malformed change alone, in its result)."""
    schemas = spec["components"]["schemas"]
    items = spec["components"]["schemas"]["PushArgs"]["properties"]["changes"]["items"]
    change = resolved(spec, items)
    assert set(change["properties"]) == {
        "change_id",
        "entity",
        "id",
        "op",
        "base_version",
        "hlc",
        "fields",
    }
    assert set(change["required"]) == {"change_id", "entity", "id", "op", "hlc"}
    assert change["additionalProperties"] is False
    properties = change["properties"]
    assert properties["entity"]["enum"] == list(ENTITIES)
    assert properties["op"]["enum"] == list(OPS)
    assert properties["base_version"]["type"] == "integer"
    assert properties["base_version"]["nullable"] is True
    pattern = re.compile(properties["hlc"]["pattern"])
    assert pattern.search("0001763712000123:0002:d-7f3a")  # API.md's example
    for malformed in ("1763712000123:0002:d-7f3a", "0001763712000123:2:d-7f3a", "now"):
        assert not pattern.search(malformed)
        with pytest.raises(ValueError):
            HLC.parse(malformed)
    fields = [resolved(spec, s) for s in properties["fields"]["anyOf"]]
    assert fields == [
        schemas[f"{entity}FieldsArgs"] for entity in ("Inspection", "Target", "Photo", "Track")
    ]
    assert "answers" in fields[0]["properties"] and "points" in fields[3]["properties"]


def test_photo_uploads_document_their_bytes_and_headers(spec):
    photo = spec["paths"]["/api/v1/photos/{photo_id}"]

    def headers(operation):
        return {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}

    put = photo["put"]
    assert set(put["requestBody"]["content"]) == {
        "image/jpeg",
        "image/png",
        "image/webp",
        "application/octet-stream",
    }
    assert headers(put)["X-Content-SHA256"]["required"] is True
    assert headers(put)["X-Content-SHA256"]["schema"]["pattern"] == "^[0-9a-fA-F]{64}$"
    assert "Upload-Length" in headers(put)

    patch = photo["patch"]
    assert set(patch["requestBody"]["content"]) == {"application/offset+octet-stream"}
    assert headers(patch)["Upload-Offset"]["required"] is True
    assert headers(patch)["Upload-Offset"]["schema"]["type"] == "integer"
    assert "Upload-Offset" in patch["responses"]["204"]["headers"]
    assert "Upload-Offset" in patch["responses"]["409"]["headers"]  # where to go on from

    head = photo["head"]["responses"]["200"]["headers"]
    assert {"Upload-Offset", "Upload-Length", "X-Content-SHA256"} <= set(head)
    assert {"image/jpeg", "image/png", "image/webp"} <= set(
        photo["get"]["responses"]["200"]["content"]
    )


def test_the_monthly_report_is_documented_as_json_and_as_csv(spec):
    """A client generated from the document, or Swagger UI, can ask for and read the CSV that
    each unit files, not only the JSON (``format=json|csv``, API.md)."""
    answer = spec["paths"]["/api/v1/reports/monthly"]["get"]["responses"]["200"]
    assert answer["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/MonthlyReport"
    }
    assert answer["content"]["text/csv"]["schema"] == {"type": "string"}
    assert "format=csv" in answer["description"]


def _settings_schema(spec) -> dict:
    return spec["components"]["schemas"]["RiskSettingsArgs"]


@pytest.fixture
def installed_settings():
    return {key: setting["value"] for key, setting in DEFAULT_SETTINGS.items()}


def test_risk_settings_patch_documents_its_groups(spec, installed_settings):
    """Only the settings groups, each in the shape the server holds it to."""
    schema = _settings_schema(spec)
    assert set(schema["properties"]) == set(DEFAULT_SETTINGS)
    assert schema["additionalProperties"] is False
    OAS30Validator(schema).validate(installed_settings)  # what GET shows is what PATCH takes
    credit = schema["properties"]["credit"]
    assert credit["required"] == ["cap", "class"] and credit["additionalProperties"] is False


@pytest.mark.parametrize(
    "group, change",
    [
        ("anything", None),  # no such group
        ("credit", {"cap": 101}),  # over the bound
        ("credit", {"class": {"A": 0, "B": 2, "C": 6, "D": 10, "E": 12}}),  # no such key
        ("frequency", {"shop": {"low": 180, "medium": 90, "elevated": 30, "high": 0}}),
        ("draw", {"rates": {"low": 0, "medium": 0.15, "elevated": 0.3, "high": 1.0}}),
        ("floors", {"credit_d": {"level": "severe"}}),  # not a level
    ],
    ids=["unknown-group", "cap", "unknown-key", "frequency", "low-rate", "level"],
)
def test_risk_settings_the_server_refuses_the_document_refuses(
    spec, login, installed_settings, group, change
):
    body = {group: {"cap": 1}} if change is None else {group: installed_settings[group] | change}
    refused = patch_settings(login("admin"), body)
    assert refused.status_code == 422, refused.get_json()
    if change is None:
        assert refused.get_json()["errors"]["json"] == {group: ["not a risk setting group"]}
    assert not OAS30Validator(_settings_schema(spec)).is_valid(body)


def test_time_filters_are_documented_as_a_date_or_a_time(spec):
    for path in ("/api/v1/conflicts", "/api/v1/inspections"):
        parameters = {p["name"]: p for p in spec["paths"][path]["get"]["parameters"]}
        for name in ("from", "to"):
            assert parameters[name]["schema"]["anyOf"] == [
                {"type": "string", "format": "date"},
                {"type": "string", "format": "date-time"},
            ], (path, name)
            assert parameters[name]["description"]


def test_no_query_parameter_is_documented_as_anything(spec):
    for method, path, operation in operations(spec):
        for parameter in operation.get("parameters", []):
            schema = resolved(spec, parameter).get("schema", {})
            assert schema.get("type") or schema.get("anyOf") or "enum" in schema, (
                method,
                path,
                parameter,
            )


@pytest.mark.parametrize(
    "path", ["/api/v1/inspections/{inspection_id}", "/api/v1/targets/{target_id}"]
)
def test_conditional_reads_document_if_none_match(spec, path):
    operation = spec["paths"][path]["get"]
    names = {resolved(spec, p)["name"] for p in operation["parameters"]}
    assert "If-None-Match" in names
    assert "304" in operation["responses"]


# -- the docs page -------------------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def test_the_docs_page_needs_no_other_host(client):
    """The page works on an intranet that reaches no CDN: its scripts and styles come from the
    app itself (flask-swagger-ui's copy of Swagger UI), and it asks no validator outside."""
    page = client.get("/api/v1/docs").get_data(as_text=True)
    links = _Links()
    links.feed(page)
    assert links.urls
    for url in links.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = client.get(url, buffered=True)  # read whole: the file behind it is closed
        assert asset.status_code == 200, url
        assert asset.content_type.split(";")[0] in ("text/css", "text/javascript"), url
    assert not re.search(r"https?://", page), page
    assert '"validatorUrl": null' in page
