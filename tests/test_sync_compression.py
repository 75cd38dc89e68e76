"""Sync travels compressed both ways, for devices on mobile data.

Pull pages are compressed for devices that accept it (a first pull is most of a device's data);
devices that ask for no compression get the page as it is. Pushes may be sent compressed with
``Content-Encoding: gzip`` or ``zstd``; the size limit holds for the decoded body.
"""

from __future__ import annotations

import gzip
import uuid

import brotli
import orjson
import pytest
from backports import zstd

from tests.conftest import assert_error, etag_of
from tests.evidence_helpers import put_photo
from tests.sync_helpers import FakeDevice, new_inspection

DECODERS = {"gzip": gzip.decompress, "br": brotli.decompress, "zstd": zstd.decompress}
ENCODERS = {"gzip": gzip.compress, "x-gzip": gzip.compress, "zstd": zstd.compress}


@pytest.fixture
def squadron_with_inspections(login, world):
    officer = FakeDevice(login("officer1"))
    officer.push_ok(
        *[
            officer.change("inspection", uuid.uuid4(), new_inspection(world, ["officer1"]))
            for _ in range(20)
        ]
    )
    return login("leader1")


@pytest.mark.parametrize("encoding", sorted(DECODERS))
def test_a_pull_page_is_compressed_in_the_encoding_the_device_accepts(
    squadron_with_inspections, encoding
):
    leader = squadron_with_inspections
    plain = leader.get("/api/v1/sync/pull", query_string={"limit": 100})
    packed = leader.get(
        "/api/v1/sync/pull", query_string={"limit": 100}, headers={"Accept-Encoding": encoding}
    )
    assert packed.status_code == 200
    assert packed.headers["Content-Encoding"] == encoding
    assert "Accept-Encoding" in packed.headers["Vary"]
    body = packed.get_data()
    assert int(packed.headers["Content-Length"]) == len(body)
    assert len(body) * 4 < len(plain.get_data())
    page = orjson.loads(DECODERS[encoding](body))
    assert page["changes"] == plain.get_json()["changes"]
    assert sum(c["entity"] == "inspection" for c in page["changes"]) == 20


def test_a_device_that_accepts_several_encodings_gets_one_of_them(squadron_with_inspections):
    packed = squadron_with_inspections.get(
        "/api/v1/sync/pull", headers={"Accept-Encoding": "gzip, deflate, br, zstd"}
    )
    assert packed.headers["Content-Encoding"] in DECODERS
    page = orjson.loads(DECODERS[packed.headers["Content-Encoding"]](packed.get_data()))
    assert page["has_more"] is False


@pytest.mark.parametrize("accepts", [None, "identity", "compress"])
def test_a_device_that_accepts_no_known_encoding_gets_the_page_as_it_is(
    squadron_with_inspections, accepts
):
    headers = {"Accept-Encoding": accepts} if accepts else {}
    response = squadron_with_inspections.get("/api/v1/sync/pull", headers=headers)
    assert response.status_code == 200
    assert "Content-Encoding" not in response.headers
    assert len(orjson.loads(response.get_data())["changes"]) > 20


def test_a_refused_pull_is_answered_as_readable_json(squadron_with_inspections):
    response = squadron_with_inspections.get(
        "/api/v1/sync/pull",
        query_string={"cursor": "not-a-cursor"},
        headers={"Accept-Encoding": "gzip"},
    )
    body = assert_error(response, 422, "validation_failed")
    assert "cursor" in str(body)
    assert "Content-Encoding" not in response.headers


def test_records_read_by_a_client_that_accepts_compression_keep_their_etag(login, world):
    """Only pull pages are compressed: compressing a record rewrites its ETag, and the update
    that sends it back in If-Match would be refused."""
    leader = login("leader1")
    path = f"/api/v1/targets/{world.targets['shop1'].id}"
    read = leader.get(path, headers={"Accept-Encoding": "gzip"})
    assert read.status_code == 200
    assert read.headers["ETag"] == etag_of(leader, path)
    renamed = leader.patch(
        path,
        json={"name": "阿强果品店"},
        headers={"If-Match": read.headers["ETag"], "Accept-Encoding": "gzip"},
    )
    assert renamed.status_code == 200, renamed.get_json()
    assert renamed.get_json()["name"] == "阿强果品店"


def push_coded(device: FakeDevice, body: bytes, coding: str):
    return device.api.post(
        "/api/v1/sync/push",
        data=body,
        headers={"Content-Type": "application/json", "Content-Encoding": coding},
    )


def batch_body(device: FakeDevice, world, count: int) -> tuple[bytes, list[str]]:
    changes = [
        device.change("inspection", uuid.uuid4(), new_inspection(world, ["officer1"]))
        for _ in range(count)
    ]
    body = orjson.dumps({"device_id": device.device_id, "changes": changes})
    return body, [c["id"] for c in changes]


def stored_inspections(login) -> set[str]:
    changes = FakeDevice(login("leader1")).pull_all()
    return {c["id"] for c in changes if c["entity"] == "inspection"}


@pytest.mark.parametrize("coding", sorted(ENCODERS))
def test_a_push_sent_compressed_is_applied_like_a_plain_one(login, world, coding):
    officer = FakeDevice(login("officer1"))
    body, ids = batch_body(officer, world, 30)
    response = push_coded(officer, ENCODERS[coding](body), coding)
    assert response.status_code == 200, response.get_json()
    assert [r["status"] for r in response.get_json()["results"]] == ["applied"] * 30
    assert set(ids) <= stored_inspections(login)


def test_a_body_sent_as_identity_is_read_as_it_is(login, world):
    officer = FakeDevice(login("officer1"))
    body, ids = batch_body(officer, world, 2)
    response = push_coded(officer, body, "identity")
    assert response.status_code == 200, response.get_json()
    assert set(ids) <= stored_inspections(login)


@pytest.mark.parametrize("coding", ["br", "deflate", "compress", "gzip, zstd"])
def test_a_push_in_a_coding_the_server_does_not_read_is_refused_and_nothing_is_stored(
    login, world, coding
):
    officer = FakeDevice(login("officer1"))
    body, ids = batch_body(officer, world, 2)
    packed = brotli.compress(body) if coding == "br" else gzip.compress(body)
    response = push_coded(officer, packed, coding)
    body = assert_error(response, 415, "unsupported_media_type")
    assert "Content-Encoding" in body["errors"]["headers"]
    assert "gzip" in body["message"] and "zstd" in body["message"]
    assert not set(ids) & stored_inspections(login)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda packed: packed[: len(packed) // 2], id="cut-short"),
        pytest.param(lambda packed: b"not compressed at all, just text", id="not-gzip"),
        pytest.param(lambda packed: packed[:20] + b"\x00" * 40 + packed[60:], id="corrupted"),
    ],
)
def test_a_compressed_push_that_does_not_decode_is_a_400_and_nothing_is_stored(
    login, world, mangle
):
    officer = FakeDevice(login("officer1"))
    body, ids = batch_body(officer, world, 5)
    response = push_coded(officer, mangle(gzip.compress(body)), "gzip")
    error = assert_error(response, 400, "malformed_json")
    assert "gzip" in error["errors"]["json"]["_schema"][0]
    assert not set(ids) & stored_inspections(login)


def test_compressed_text_that_is_not_json_is_malformed_json(login):
    officer = FakeDevice(login("officer1"))
    response = push_coded(officer, zstd.compress(b'{"device_id": "dev-officer1", "chan'), "zstd")
    assert_error(response, 400, "malformed_json")


def test_the_size_limit_holds_for_the_decoded_body(app, login, world, monkeypatch):
    """A few kilobytes that decode to more than the limit (a decompression bomb) are refused
    as too large, as the same body sent plainly would be."""
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 256 * 1024)
    officer = FakeDevice(login("officer1"))
    body, ids = batch_body(officer, world, 2)
    padded = body[:-1] + b" " * (4 * 1024 * 1024) + b"}"  # whitespace: still valid JSON
    packed = gzip.compress(padded)
    assert len(packed) < 16 * 1024
    assert_error(push_coded(officer, packed, "gzip"), 413, "payload_too_large")
    assert_error(
        officer.api.post(
            "/api/v1/sync/push", data=padded, headers={"Content-Type": "application/json"}
        ),
        413,
        "payload_too_large",
    )
    assert not set(ids) & stored_inspections(login)
    within = push_coded(officer, gzip.compress(body), "gzip")
    assert within.status_code == 200, within.get_json()


def test_a_photo_is_uploaded_as_it_is_and_a_compressed_one_is_refused(login, world):
    """Photo bytes are the evidence, counted by offset: they are never sent compressed."""
    officer = login("officer1")
    response = put_photo(
        officer,
        uuid.uuid4(),
        gzip.compress(b"\xff\xd8 a photo"),
        headers={"Content-Encoding": "gzip"},
    )
    body = assert_error(response, 415, "unsupported_media_type")
    assert "Content-Encoding" in body["errors"]["headers"]
