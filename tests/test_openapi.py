"""The OpenAPI document and the browsable docs are served without a token."""

from __future__ import annotations

import json

import pytest

PATHS = [
    "/api/v1/auth/token",
    "/api/v1/me",
    "/api/v1/targets",
    "/api/v1/targets/{target_id}",
    "/api/v1/targets/by-code/{code}",
    "/api/v1/squadrons",
    "/api/v1/squadrons/{squadron_id}",
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
