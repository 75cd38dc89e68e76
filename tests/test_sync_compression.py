"""Pull pages travel compressed to devices that accept it: a first pull is most of a device's
mobile data. Devices that ask for no compression get the page as it is."""

from __future__ import annotations

import gzip
import uuid

import brotli
import orjson
import pytest
from backports import zstd

from tests.conftest import assert_error, etag_of
from tests.sync_helpers import FakeDevice, new_inspection

DECODERS = {"gzip": gzip.decompress, "br": brotli.decompress, "zstd": zstd.decompress}


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
