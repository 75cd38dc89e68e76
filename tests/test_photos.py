"""Photo upload: validation judged by content, storage byte for byte, sizes, resumable uploads,
claims by metadata, scoping and the sweep."""

from __future__ import annotations

import io
import os
import random
import struct
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from werkzeug.test import EnvironBuilder, run_wsgi_app

from fieldapp.db import db
from fieldapp.photos.models import Photo, PhotoUpload
from tests.conftest import assert_error, audit_entries
from tests.evidence_helpers import (
    inspection_with_photo,
    make_image,
    patch_part,
    photo_metadata,
    put_photo,
    sha,
    zip_bytes,
)
from tests.sync_helpers import FakeDevice, new_inspection


def store_files(app) -> list[Path]:
    """Every file under the photo store but derived caches (originals and staging)."""
    root = Path(app.config["STORAGE_DIR"])
    return sorted(
        p for p in root.rglob("*") if p.is_file() and "derived" not in p.relative_to(root).parts
    )


def fetch(api, photo_id, size: str | None = None):
    """GET a photo, reading the streamed body to its end (which closes the file behind it)."""
    query = f"?size={size}" if size else ""
    return api.client.get(
        f"/api/v1/photos/{photo_id}{query}",
        headers={"Authorization": f"Bearer {api.token}"},
        buffered=True,
    )


@pytest.fixture
def officer(login):
    return login("officer1")


# -- whole uploads -------------------------------------------------------------------------------


def test_upload_keeps_the_original_byte_for_byte_and_serves_oriented_sizes(app, officer):
    data = make_image(
        1600, 1200, orientation=6, gps=(121.4701, 31.3702), taken="2026:11:20 17:35:00"
    )
    photo_id = uuid.uuid4()
    response = put_photo(officer, photo_id, data)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["sha256"] == sha(data) and body["size"] == len(data)
    assert body["content_type"] == "image/jpeg" and (body["width"], body["height"]) == (1600, 1200)
    assert body["exif_taken_at"].startswith("2026-11-20T09:35:00")  # 17:35 in Shanghai
    assert body["exif_location"]["lon"] == pytest.approx(121.4701, abs=1e-5)
    assert body["exif_location"]["lat"] == pytest.approx(31.3702, abs=1e-5)
    assert body["claimed"] is False

    original = fetch(officer, photo_id)
    assert original.status_code == 200 and original.data == data
    assert original.mimetype == "image/jpeg"
    assert original.headers["X-Content-SHA256"] == sha(data)
    for size, box in (("thumb", 256), ("medium", 1280)):
        derived = fetch(officer, photo_id, size)
        assert derived.status_code == 200 and derived.mimetype == "image/jpeg"
        image = Image.open(io.BytesIO(derived.data))
        # orientation 6: the camera was turned, so the picture stands upright (portrait)
        assert image.height > image.width and max(image.size) == box
        assert len(image.getexif()) == 0  # no EXIF, so no GPS, leaves the server in a size
    assert_error(fetch(officer, photo_id, "huge"), 422, "validation_failed")


def test_the_same_bytes_again_answer_200_and_other_bytes_409(officer):
    photo_id = uuid.uuid4()
    data = make_image()
    assert put_photo(officer, photo_id, data).status_code == 201
    again = put_photo(officer, photo_id, data)
    assert again.status_code == 200 and again.get_json()["sha256"] == sha(data)
    assert_error(put_photo(officer, photo_id, make_image(320, 240)), 409, "id_conflict")
    assert fetch(officer, photo_id).data == data


def test_a_digest_that_does_not_match_keeps_nothing(app, officer):
    before = store_files(app)
    data = make_image()
    response = put_photo(officer, uuid.uuid4(), data, digest=sha(b"other"))
    assert_error(response, 400, "digest_mismatch")
    assert store_files(app) == before


@pytest.mark.parametrize(
    ("payload", "status", "error"),
    [
        (b"just some text, not a photo\n" * 40, 415, "unsupported_media_type"),
        (zip_bytes(), 415, "unsupported_media_type"),
        (make_image(64, 64, "GIF", mode="P"), 415, "unsupported_media_type"),
        (make_image(1200, 900)[:-5000], 422, "bad_image"),  # truncated JPEG
        (make_image(800, 600, "PNG")[:-300], 422, "bad_image"),  # truncated PNG
        (make_image(20000, 100, "PNG", mode="L"), 422, "bad_image"),  # absurd shape
        (make_image(9000, 6000, "PNG", mode="1"), 422, "bad_image"),  # over our pixel limit
        (make_image(12000, 12000, "PNG", mode="1"), 422, "bad_image"),  # over Pillow's too
    ],
    ids=["text", "zip", "gif", "truncated-jpeg", "truncated-png", "absurd", "54mpx", "144mpx"],
)
def test_what_is_not_a_sound_photo_is_refused_and_nothing_stays(
    app, officer, payload, status, error
):
    before = store_files(app)
    body = assert_error(put_photo(officer, uuid.uuid4(), payload), status, error)
    assert body["message"]
    assert store_files(app) == before


def corrupted(data: bytes, marker: bytes, offset: int, value: int | None = None) -> bytes:
    """``data`` with the byte ``offset`` after ``marker`` changed (flipped, or set to value)."""
    damaged = bytearray(data)
    at = damaged.index(marker) + offset
    damaged[at] = value if value is not None else damaged[at] ^ 0xFF
    return bytes(damaged)


@pytest.mark.parametrize(
    "damage",
    [
        # a garbled Huffman table: libjpeg cannot decode the scan
        lambda data: corrupted(corrupted(data, b"\xff\xc4", 6), b"\xff\xc4", 7),
        # a frame header claiming 7 colour components: a JPEG signature Pillow cannot parse
        lambda data: corrupted(data, b"\xff\xc0", 9, 7),
    ],
    ids=["huffman-table", "frame-header"],
)
def test_a_corrupt_jpeg_is_a_bad_image_and_leaves_nothing(app, officer, damage):
    before = store_files(app)
    response = put_photo(officer, uuid.uuid4(), damage(make_image(800, 600)))
    assert_error(response, 422, "bad_image")
    assert store_files(app) == before


def test_type_is_judged_by_content_not_by_name_or_header(officer):
    png = make_image(300, 200, "PNG")
    response = officer.put(
        f"/api/v1/photos/{uuid.uuid4()}",
        data=png,
        headers={"X-Content-SHA256": sha(png), "Content-Type": "image/jpeg"},
    )
    assert response.status_code == 201 and response.get_json()["content_type"] == "image/png"
    webp = make_image(300, 200, "WEBP")
    response = put_photo(officer, uuid.uuid4(), webp)
    assert response.status_code == 201 and response.get_json()["content_type"] == "image/webp"


def test_a_gif_whose_header_claims_huge_dimensions_is_415_not_422(officer):
    """A GIF is not JPEG, PNG or WebP: 415 by content, whatever size its header claims (before,
    Pillow read the GIF's 60000×60000 first and refused it as a decompression bomb: 422)."""
    width = height = 60000
    data = (
        b"GIF89a"
        + struct.pack("<HH", width, height)
        + b"\x00\x00\x00,"
        + struct.pack("<HHHH", 0, 0, width, height)
        + b"\x00\x02\x02\x44\x01\x00;"
    )
    assert_error(put_photo(officer, uuid.uuid4(), data), 415, "unsupported_media_type")


def mpo_bytes() -> bytes:
    """A JPEG as many phones write it: the picture, then a second image (MPF, CIPA DC-007)."""
    picture = Image.linear_gradient("L").resize((640, 480)).convert("RGB")
    out = io.BytesIO()
    picture.save(out, "MPO", save_all=True, append_images=[picture.resize((160, 120))])
    return out.getvalue()


def test_a_phone_jpeg_with_a_second_mpf_image_is_stored_as_a_jpeg(officer):
    """Pillow calls such a file MPO; it starts with the JPEG marker and its first image is the
    photo, so the officer's upload is a JPEG like any other, sizes and all."""
    data = mpo_bytes()
    assert data[:3] == b"\xff\xd8\xff"
    photo_id = uuid.uuid4()
    response = put_photo(officer, photo_id, data)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["content_type"] == "image/jpeg"
    assert (response.get_json()["width"], response.get_json()["height"]) == (640, 480)
    original = fetch(officer, photo_id)
    assert original.data == data and original.mimetype == "image/jpeg"
    thumb = Image.open(io.BytesIO(fetch(officer, photo_id, "thumb").data))
    assert thumb.format == "JPEG" and thumb.size == (256, 192)


def with_comment(fmt: str, comment: str) -> bytes:
    """An image carrying ``comment`` where apps write one: a JPEG COM segment, a PNG text
    chunk named "comment"."""
    image = Image.linear_gradient("L").resize((640, 480)).convert("RGB")
    out = io.BytesIO()
    if fmt == "PNG":
        from PIL import PngImagePlugin

        text = PngImagePlugin.PngInfo()
        text.add_text("comment", comment)
        image.save(out, "PNG", pnginfo=text)
    else:
        image.save(out, "JPEG", comment=comment.encode())
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_comment_in_the_photo_does_not_reach_its_shared_sizes(officer, fmt):
    """Derived sizes have every piece of metadata stripped: an owner's name or a place written
    as a comment stays in the original (evidence, byte for byte) and nowhere else."""
    data = with_comment(fmt, "owner: Zhang Wei, GPS 31.3702N 121.4701E")
    photo_id = uuid.uuid4()
    assert put_photo(officer, photo_id, data).status_code == 201
    assert b"Zhang Wei" in fetch(officer, photo_id).data
    for size in ("thumb", "medium"):
        derived = fetch(officer, photo_id, size)
        assert derived.status_code == 200
        assert b"Zhang Wei" not in derived.data, size
        assert "comment" not in Image.open(io.BytesIO(derived.data)).info, size


def exif_jpeg(**fields) -> bytes:
    """A sound JPEG whose Exif IFD holds ``fields`` (tag name -> value)."""
    out = io.BytesIO()
    Image.linear_gradient("L").resize((320, 240)).convert("RGB").save(
        out, "JPEG", exif=exif_of(**fields)
    )
    return out.getvalue()


@pytest.mark.parametrize(
    "fields",
    [
        {"DateTimeOriginal": "0001:01:01 00:00:00", "OffsetTimeOriginal": "+08:00"},
        {"DateTimeOriginal": "0001:01:01 00:00:00"},  # in Shanghai: before the year 1 in UTC
        {"DateTimeOriginal": "0000:00:00 00:00:00"},
        {"DateTimeOriginal": "2026:11:20 17:35:00", "OffsetTimeOriginal": "+99:99"},
    ],
    ids=["year-1-east", "year-1-local", "zeros", "bad-offset"],
)
def test_a_sound_photo_with_an_odd_camera_clock_is_stored(officer, fields):
    """A camera whose clock was reset writes dates no instant has; the picture is sound, so it
    is stored (not 422 bad_image) and its EXIF time is unknown or read without the offset."""
    data = exif_jpeg(**fields)
    response = put_photo(officer, uuid.uuid4(), data)
    assert response.status_code == 201, response.get_json()
    taken = response.get_json()["exif_taken_at"]
    if fields.get("OffsetTimeOriginal") == "+99:99":
        assert taken.startswith("2026-11-20T09:35:00")  # the local zone, as without offset
    else:
        assert taken is None


def test_an_upload_over_the_size_limit_is_413(app, officer, monkeypatch):
    settings = app.extensions["fieldapp.photos"]
    monkeypatch.setitem(
        app.extensions, "fieldapp.photos", type(settings)(**{**vars(settings), "max_bytes": 5000})
    )
    before = store_files(app)
    assert_error(put_photo(officer, uuid.uuid4(), make_image(800, 600)), 413, "payload_too_large")
    assert_error(
        put_photo(officer, uuid.uuid4(), b"x" * 10, headers={"Upload-Length": "6000"}),
        413,
        "payload_too_large",
    )
    assert store_files(app) == before


def test_bad_headers_get_field_messages(officer):
    photo_id = uuid.uuid4()
    response = officer.put(f"/api/v1/photos/{photo_id}", data=make_image())
    body = assert_error(response, 422, "validation_failed")
    assert "X-Content-SHA256" in body["errors"]["headers"]
    body = assert_error(
        put_photo(officer, photo_id, make_image(), digest="abc"), 422, "validation_failed"
    )
    response = put_photo(officer, photo_id, make_image(), headers={"Upload-Length": "-3"})
    assert "Upload-Length" in assert_error(response, 422, "validation_failed")["errors"]["headers"]
    response = officer.patch(
        f"/api/v1/photos/{photo_id}", data=b"abc", headers={"Upload-Offset": "0"}
    )
    assert_error(response, 415, "unsupported_media_type")
    for bad in ("x", "²", "1e3", "9" * 16):
        response = patch_part(officer, photo_id, 0, b"abc", headers={"Upload-Offset": bad})
        assert (
            "Upload-Offset" in assert_error(response, 422, "validation_failed")["errors"]["headers"]
        )


def test_supervisors_do_not_upload(login):
    response = put_photo(login("supervisor"), uuid.uuid4(), make_image())
    assert_error(response, 403, "forbidden")


# -- claims and scoping --------------------------------------------------------------------------


def test_metadata_claims_an_earlier_upload_and_pull_shows_it_uploaded(app, world, officer):
    data = make_image()
    device = FakeDevice(officer)
    inspection_id, photo_id = inspection_with_photo(world, device, make_image(10, 10))
    # a second photo uploaded first, its metadata synced afterwards
    early = uuid.uuid4()
    assert put_photo(officer, early, data).status_code == 201
    [result] = device.push_ok(device.change("photo", early, photo_metadata(inspection_id, data)))
    assert result["status"] == "applied"
    pulled = {c["id"]: c["data"]["uploaded"] for c in device.pull_all() if c["entity"] == "photo"}
    assert pulled == {str(early): True, str(photo_id): False}
    assert put_photo(officer, early, data).get_json()["claimed"] is True


def test_an_upload_completes_photo_metadata_synced_before_it(app, world, officer):
    data = make_image(500, 400)
    device = FakeDevice(officer)
    _, photo_id = inspection_with_photo(world, device, data)
    device.pull_all()
    assert put_photo(officer, photo_id, data).status_code == 201
    [change] = [c for c in device.pull_all() if c["entity"] == "photo"]
    assert change["data"]["uploaded"] is True and change["version"] == 2


def test_bytes_other_than_the_metadata_names_are_refused(world, officer):
    device = FakeDevice(officer)
    inspection_id, photo_id = inspection_with_photo(world, device, make_image(500, 400))
    assert_error(put_photo(officer, photo_id, make_image(400, 300)), 409, "id_conflict")
    # and metadata naming other bytes than an upload already stored is rejected
    stored = uuid.uuid4()
    assert put_photo(officer, stored, make_image(100, 80)).status_code == 201
    [result] = device.push_ok(
        device.change("photo", stored, photo_metadata(inspection_id, make_image(90, 80)))
    )
    assert result["status"] == "rejected" and "sha256" in result["error"]["errors"]["json"]


def test_bytes_someone_else_put_first_under_a_photo_id_do_not_bar_the_officers_photo(
    app, world, login
):
    """Anyone who may upload can PUT bytes under an id whose metadata has not arrived (a
    colleague who saw the id, say). When the officer's metadata names other bytes, those are
    discarded, audited, and the officer's own bytes then go in; before, the officer's metadata
    was refused and the photo barred for ever."""
    officer, colleague = login("officer1"), login("officer2")
    device = FakeDevice(officer)
    inspection_id, _ = inspection_with_photo(world, device, make_image(500, 400))
    photo_id, real = uuid.uuid4(), make_image(120, 90)
    assert put_photo(colleague, photo_id, make_image(100, 80)).status_code == 201

    [result] = device.push_ok(device.change("photo", photo_id, photo_metadata(inspection_id, real)))

    assert result["status"] == "applied", result
    [discarded] = audit_entries(app, action="photo.upload_discarded", record_id=str(photo_id))
    assert discarded.actor_id == world.users["officer1"].id
    assert put_photo(officer, photo_id, real).status_code == 201
    assert fetch(officer, photo_id, "original").data == real


def test_a_strangers_unfinished_upload_under_a_photo_id_is_discarded_when_the_metadata_comes(
    app, world, login
):
    """Someone outside the inspection (another squadron's officer) starts an upload of other
    bytes under a photo id before its metadata arrives. When it arrives, those bytes go
    (audited, their part file with them), as a stranger's complete upload would: HEAD tells
    the officer's device to start from 0, and its own bytes go in."""
    officer, stranger = login("officer1"), login("officer3")
    device = FakeDevice(officer)
    inspection_id, _ = inspection_with_photo(world, device, make_image(500, 400))
    photo_id, real, other = uuid.uuid4(), make_image(1200, 900), make_image(1000, 800)
    started = put_photo(
        stranger,
        photo_id,
        other[:2000],
        digest=sha(other),
        headers={"Upload-Length": str(len(other))},
    )
    assert started.status_code == 202
    part_file = Path(app.config["STORAGE_DIR"]) / "staging" / f"{photo_id}.part"
    assert part_file.exists()

    [result] = device.push_ok(device.change("photo", photo_id, photo_metadata(inspection_id, real)))

    assert result["status"] == "applied", result
    [discarded] = audit_entries(app, action="photo.upload_discarded", record_id=str(photo_id))
    assert discarded.actor_id == world.users["officer1"].id
    assert not part_file.exists()
    head = officer.client.head(
        f"/api/v1/photos/{photo_id}", headers={"Authorization": f"Bearer {officer.token}"}
    )
    assert (head.headers["Upload-Offset"], head.headers["Upload-Length"]) == ("0", str(len(real)))
    assert patch_part(officer, photo_id, 0, real[:4096]).status_code == 204
    assert patch_part(officer, photo_id, 4096, real[4096:]).status_code == 201
    assert fetch(officer, photo_id, "original").data == real


def test_once_uploaded_the_metadata_keeps_the_stored_bytes_size_and_type(world, officer):
    """The size and type of an uploaded photo describe the stored bytes, as its digest names
    them: a device edit changing them is refused field by field (before, every device pulled
    a 7 kB JPEG described as a 12-byte PNG, while GET served image/jpeg). Sent unchanged, they
    are no change."""
    device = FakeDevice(officer)
    data = make_image(500, 400)
    _, photo_id = inspection_with_photo(world, device, data)
    assert put_photo(officer, photo_id, data).status_code == 201
    [pulled] = [c for c in device.pull_all() if c["entity"] == "photo"]

    [result] = device.push_ok(
        device.change(
            "photo",
            photo_id,
            {"size": 12, "content_type": "image/png"},
            base_version=pulled["version"],
        )
    )

    assert result["status"] == "rejected", result
    assert set(result["error"]["errors"]["json"]) == {"size", "content_type"}
    [pulled] = [c for c in FakeDevice(officer).pull_all() if c["entity"] == "photo"]
    assert pulled["data"]["uploaded"] is True
    assert (pulled["data"]["size"], pulled["data"]["content_type"]) == (len(data), "image/jpeg")
    [same] = device.push_ok(
        device.change(
            "photo",
            photo_id,
            {"size": len(data), "content_type": "image/jpeg", "item_code": "S02"},
            base_version=pulled["version"],
        )
    )
    assert same["status"] == "applied", same


def test_photos_are_scoped_like_their_inspection(world, login):
    officer = login("officer1")
    data = make_image()
    _, photo_id = inspection_with_photo(world, FakeDevice(officer), data)
    assert put_photo(officer, photo_id, data).status_code == 201
    for reader in ("officer1", "officer2", "leader1", "supervisor", "admin"):
        assert fetch(login(reader), photo_id, "thumb").status_code == 200
    for outsider in ("officer3", "leader2"):
        api = login(outsider)
        assert_error(fetch(api, photo_id), 404, "not_found")
        assert (
            api.client.head(
                f"/api/v1/photos/{photo_id}", headers={"Authorization": f"Bearer {api.token}"}
            ).status_code
            == 404
        )
        assert_error(put_photo(api, photo_id, data), 403, "forbidden")


def test_a_part_for_another_squadrons_photo_is_forbidden_like_a_whole_upload(world, login):
    """Out-of-scope writes are 403 (API.md), whether the bytes come whole (PUT) or as the
    first part of a resumable upload (PATCH); nothing is kept."""
    device = FakeDevice(login("officer1"))
    data = make_image()
    _, photo_id = inspection_with_photo(world, device, data)
    stranger = login("officer3")
    assert_error(put_photo(stranger, photo_id, data), 403, "forbidden")
    part = patch_part(stranger, photo_id, 0, data[:100], headers={"X-Content-SHA256": sha(data)})
    assert_error(part, 403, "forbidden")
    assert head_offset(device.api, photo_id) == 0


def test_a_reviewer_sees_a_photo_the_inspection_names_before_its_metadata_arrives(world, login):
    """The officer's device pushed the inspection naming the photo and uploaded its bytes;
    the metadata has not come yet. The leader who reads the inspection sees the photo (the
    inspection claims it); a leader of another squadron does not learn it exists."""
    officer = login("officer1")
    device = FakeDevice(officer)
    named, answered = uuid.uuid4(), uuid.uuid4()
    answers = {"S02": {"result": "fail", "note": "占道", "photo_ids": [str(answered)]}}
    inspection_id = uuid.uuid4()
    device.push_ok(
        device.change(
            "inspection",
            inspection_id,
            new_inspection(
                world, ["officer1", "officer2"], photo_ids=[str(named)], answers=answers
            ),
        )
    )
    for photo_id in (named, answered):
        assert put_photo(officer, photo_id, make_image()).status_code == 201
    leader = login("leader1")
    assert leader.get(f"/api/v1/inspections/{inspection_id}").status_code == 200
    for photo_id in (named, answered):
        assert fetch(leader, photo_id, "thumb").status_code == 200
        assert fetch(login("officer2"), photo_id).status_code == 200
        assert_error(fetch(login("leader2"), photo_id), 404, "not_found")
    # bytes uploaded under an id by someone who had no part in the inspection naming it stay
    # theirs alone
    squatted = uuid.uuid4()
    device.push_ok(
        device.change(
            "inspection",
            uuid.uuid4(),
            new_inspection(world, ["officer1", "officer2"], photo_ids=[str(squatted)]),
        )
    )
    assert put_photo(login("officer3"), squatted, make_image(300, 200)).status_code == 201
    assert_error(fetch(leader, squatted), 404, "not_found")


def test_head_tells_the_total_size_the_metadata_names_before_any_byte(world, officer):
    """A device that lost its own record of the upload learns from HEAD what to send: offset 0
    of the size its metadata announced."""
    data = make_image()
    _, photo_id = inspection_with_photo(world, FakeDevice(officer), data)
    response = officer.client.head(
        f"/api/v1/photos/{photo_id}", headers={"Authorization": f"Bearer {officer.token}"}
    )
    assert response.status_code == 200
    assert response.headers["Upload-Offset"] == "0"
    assert response.headers["Upload-Length"] == str(len(data))
    assert "X-Content-SHA256" not in response.headers


def test_a_digest_in_capitals_is_the_same_digest_in_metadata_and_upload(world, officer):
    """Some platforms print hex in capitals. Metadata and X-Content-SHA256 take either case
    and the server keeps and answers lowercase, so they still name the same bytes."""
    data = make_image()
    digest = sha(data).upper()
    device = FakeDevice(officer)
    inspection_id = uuid.uuid4()
    photo_id = uuid.uuid4()
    results = device.push_ok(
        device.change("inspection", inspection_id, new_inspection(world, ["officer1"])),
        device.change("photo", photo_id, photo_metadata(inspection_id, data, sha256=digest)),
    )
    assert [r["status"] for r in results] == ["applied", "applied"], results
    response = put_photo(officer, photo_id, data, digest=digest)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["sha256"] == sha(data) and response.get_json()["claimed"]
    [pulled] = [c for c in device.pull_all() if c["entity"] == "photo"]
    assert pulled["data"]["sha256"] == sha(data) and pulled["data"]["uploaded"] is True
    # the device sends its metadata again, digest in capitals as it holds it: no change of
    # the digest of an uploaded photo, so not refused
    [again] = device.push_ok(
        device.change(
            "photo", photo_id, {"sha256": digest, "size": len(data)}, base_version=pulled["version"]
        )
    )
    assert again["status"] == "applied", again
    body = assert_error(
        put_photo(officer, uuid.uuid4(), data, digest="G" * 64), 422, "validation_failed"
    )
    assert "X-Content-SHA256" in body["errors"]["headers"]


def test_an_unclaimed_upload_is_seen_by_its_uploader_only(login):
    officer = login("officer1")
    photo_id = uuid.uuid4()
    assert put_photo(officer, photo_id, make_image()).status_code == 201
    assert fetch(officer, photo_id).status_code == 200
    assert_error(fetch(login("officer2"), photo_id), 404, "not_found")
    assert_error(fetch(officer, uuid.uuid4()), 404, "not_found")


# -- resumable uploads ---------------------------------------------------------------------------


def head_offset(api, photo_id) -> int:
    response = api.client.head(
        f"/api/v1/photos/{photo_id}", headers={"Authorization": f"Bearer {api.token}"}
    )
    assert response.status_code == 200
    return int(response.headers["Upload-Offset"])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_upload_cut_at_random_offsets_resumes_to_the_same_bytes(app, officer, seed):
    rng = random.Random(seed)
    data = make_image(2000, 1500, quality=95)
    photo_id = uuid.uuid4()
    first = rng.randrange(1, len(data) // 3)
    response = put_photo(
        officer, photo_id, data[:first], digest=sha(data), headers={"Upload-Length": str(len(data))}
    )
    assert response.status_code == 202 and int(response.headers["Upload-Offset"]) == first
    assert head_offset(officer, photo_id) == first
    offset = first
    while offset < len(data):
        end = min(len(data), offset + rng.randrange(1, len(data) // 3))
        response = patch_part(officer, photo_id, offset, data[offset:end])
        offset = end
        if offset < len(data):
            assert response.status_code == 204 and int(response.headers["Upload-Offset"]) == offset
            assert head_offset(officer, photo_id) == offset
    assert response.status_code == 201, response.get_json()
    assert head_offset(officer, photo_id) == len(data)
    assert fetch(officer, photo_id).data == data
    assert not list((Path(app.config["STORAGE_DIR"]) / "staging").iterdir())


def test_head_names_the_stored_bytes_only_once_they_are_stored(officer):
    data = make_image(1000, 800)
    photo_id = uuid.uuid4()
    put_photo(
        officer, photo_id, data[:100], digest=sha(data), headers={"Upload-Length": str(len(data))}
    )
    url, auth = f"/api/v1/photos/{photo_id}", {"Authorization": f"Bearer {officer.token}"}
    receiving = officer.client.head(url, headers=auth)
    assert receiving.headers["Upload-Offset"] == "100"
    assert "X-Content-SHA256" not in receiving.headers  # nothing is kept yet
    assert patch_part(officer, photo_id, 100, data[100:]).status_code == 201
    stored = officer.client.head(url, headers=auth)
    assert stored.headers["Upload-Offset"] == str(len(data))
    assert stored.headers["X-Content-SHA256"] == sha(data)


def test_a_part_at_the_wrong_offset_is_refused_with_the_right_one(officer):
    data = make_image(1000, 800)
    photo_id = uuid.uuid4()
    put_photo(
        officer, photo_id, data[:100], digest=sha(data), headers={"Upload-Length": str(len(data))}
    )
    response = patch_part(officer, photo_id, 50, data[50:200])
    assert_error(response, 409, "offset_mismatch")
    assert response.headers["Upload-Offset"] == "100"
    assert patch_part(officer, photo_id, 100, data[100:]).status_code == 201
    done = patch_part(officer, photo_id, 100, data[100:])
    assert_error(done, 409, "offset_mismatch")
    assert done.headers["Upload-Offset"] == str(len(data))


def test_a_dropped_connection_keeps_what_arrived(app, officer):
    data = make_image(1200, 900, quality=95)
    photo_id = uuid.uuid4()
    cut = len(data) // 2
    builder = EnvironBuilder(
        path=f"/api/v1/photos/{photo_id}",
        method="PUT",
        input_stream=io.BytesIO(data[:cut]),
        headers={"Authorization": f"Bearer {officer.token}", "X-Content-SHA256": sha(data)},
    )
    environ = builder.get_environ()
    environ["CONTENT_LENGTH"] = str(len(data))  # announced; the rest never comes
    body, status, _ = run_wsgi_app(app, environ, buffered=True)
    assert status.startswith("202"), b"".join(body)  # what the server answers, unheard
    assert head_offset(officer, photo_id) == cut
    assert patch_part(officer, photo_id, cut, data[cut:]).status_code == 201
    assert fetch(officer, photo_id).data == data


def test_a_resumed_upload_from_metadata_alone_and_a_wrong_ending(app, world, officer):
    data = make_image(900, 700)
    _, photo_id = inspection_with_photo(world, FakeDevice(officer), data)
    assert head_offset(officer, photo_id) == 0
    assert patch_part(officer, photo_id, 0, data[:500]).status_code == 204
    before = store_files(app)
    wrong = patch_part(officer, photo_id, 500, b"\0" * (len(data) - 500))
    assert_error(wrong, 400, "digest_mismatch")
    assert head_offset(officer, photo_id) == 0  # the wrong bytes were dropped, start again
    assert len(store_files(app)) == len(before) - 1
    assert patch_part(officer, photo_id, 0, data).status_code == 201


def test_a_resumed_upload_of_a_bad_image_leaves_nothing(app, officer):
    text = b"not an image at all " * 100
    photo_id = uuid.uuid4()
    before = store_files(app)
    put_photo(
        officer, photo_id, text[:100], digest=sha(text), headers={"Upload-Length": str(len(text))}
    )
    assert_error(patch_part(officer, photo_id, 100, text[100:]), 415, "unsupported_media_type")
    assert store_files(app) == before
    assert_error(fetch(officer, photo_id), 404, "not_found")


# -- sweep ---------------------------------------------------------------------------------------


def test_sweep_removes_old_unclaimed_uploads_and_keeps_claimed_ones(app, world, login):
    from fieldapp.actor import Actor
    from fieldapp.db import utcnow
    from fieldapp.photos import operations

    officer = login("officer1")
    claimed_bytes, orphan_bytes = make_image(300, 200), make_image(200, 100)
    _, claimed = inspection_with_photo(world, FakeDevice(officer), claimed_bytes)
    put_photo(officer, claimed, claimed_bytes)
    orphan = uuid.uuid4()
    put_photo(officer, orphan, orphan_bytes)
    store = operations.store_for(app.config)
    with app.app_context():
        fresh = operations.sweep(Actor.for_system("test"), store, utcnow(), timedelta(hours=72))
        assert fresh.unclaimed == 0
        later = utcnow() + timedelta(hours=73)
        report = operations.sweep(Actor.for_system("test"), store, later, timedelta(hours=72))
        db.session.commit()
        assert report.unclaimed == 1 and report.bytes_freed >= len(orphan_bytes)
        assert db.session.get(PhotoUpload, orphan) is None
        assert db.session.get(PhotoUpload, claimed) is not None
        assert db.session.get(Photo, claimed).uploaded
    assert not store.has_original(sha(orphan_bytes)) and store.has_original(sha(claimed_bytes))
    assert_error(fetch(officer, orphan), 404, "not_found")
    assert fetch(officer, claimed).data == claimed_bytes


def test_sweep_command_reports_and_removes_backdated_orphans(app, login):
    import sqlalchemy as sa

    from fieldapp.db import utcnow
    from fieldapp.photos.commands import photos_cli

    officer = login("officer1")
    orphan_bytes = make_image(120, 90)
    orphan = uuid.uuid4()
    assert put_photo(officer, orphan, orphan_bytes).status_code == 201
    with app.app_context():
        db.session.execute(
            sa.update(PhotoUpload)
            .where(PhotoUpload.id == orphan)
            .values(updated_at=utcnow() - timedelta(hours=5))
        )
        db.session.commit()
    # the upload happened five hours ago: its file says so too (the sweep spares a file an
    # upload relied on since its cutoff)
    five_hours_ago = (utcnow() - timedelta(hours=5)).timestamp()
    original = operations_store(app).original_path(sha(orphan_bytes))
    os.utime(original, (five_hours_ago, five_hours_ago))
    runner = app.test_cli_runner()
    dry = runner.invoke(photos_cli, ["sweep", "--older-than", "4", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would remove 1 unclaimed and 0 unfinished uploads older than 4 h" in dry.output
    assert fetch(officer, orphan).status_code == 200
    done = runner.invoke(photos_cli, ["sweep", "--older-than", "4"])
    assert "removed 1 unclaimed" in done.output
    assert_error(fetch(officer, orphan), 404, "not_found")
    assert not operations_store(app).has_original(sha(orphan_bytes))


def operations_store(app):
    from fieldapp.photos import operations

    return operations.store_for(app.config)


def test_the_sweep_spares_an_orphaned_original_a_new_upload_just_relied_on(app):
    """A request died after keeping an original (no row names it): an orphan, swept once old.
    If a new upload of the same bytes relies on that file while the sweep runs, its row is not
    committed yet and the sweep cannot see it; the file must stay, or the new photo would be a
    row without its bytes."""
    from fieldapp.actor import Actor
    from fieldapp.db import utcnow
    from fieldapp.photos import operations

    store = operations_store(app)
    data = make_image(210, 150)
    digest = sha(data)

    def staged() -> Path:
        path = store.staging_file()
        path.write_bytes(data)
        return path

    store.put_original(digest, staged())
    long_ago = (utcnow() - timedelta(days=10)).timestamp()
    os.utime(store.original_path(digest), (long_ago, long_ago))
    store.put_original(digest, staged())  # the new upload, its row not committed yet
    with app.app_context():
        report = operations.sweep(Actor.for_system("test"), store, utcnow(), timedelta(hours=72))
        db.session.rollback()
    assert store.has_original(digest), report
    assert store.original_path(digest).read_bytes() == data
    # nothing relied on it since: then it goes
    os.utime(store.original_path(digest), (long_ago, long_ago))
    with app.app_context():
        operations.sweep(Actor.for_system("test"), store, utcnow(), timedelta(hours=72))
        db.session.rollback()
    assert not store.has_original(digest)


def test_a_photo_whose_bytes_went_missing_is_404_and_a_new_upload_restores_it(app, officer):
    """However the original left the store (lost on disk, removed by hand), reading the photo
    answers 404 with a reason, never a 500; the officer uploads the same bytes again and the
    photo is whole."""
    data = make_image(900, 600)
    photo_id = uuid.uuid4()
    assert put_photo(officer, photo_id, data).status_code == 201
    store = operations_store(app)
    store.delete_original(sha(data))  # its cached sizes go with it
    for size in (None, "medium", "thumb"):
        body = assert_error(fetch(officer, photo_id, size), 404, "not_found")
        assert "missing" in body["message"]
    again = put_photo(officer, photo_id, data)
    assert again.status_code == 200, again.get_json()
    assert fetch(officer, photo_id).data == data
    assert fetch(officer, photo_id, "thumb").status_code == 200
    with app.app_context():
        from fieldapp.audit.models import AuditEntry

        actions = [
            e.action
            for e in db.session.query(AuditEntry).filter(AuditEntry.record_id == str(photo_id))
        ]
    assert "photo.original_restored" in actions


def test_a_missing_cached_size_is_made_again_from_the_original(app, officer):
    from fieldapp.photos.storage import FileSystemStore

    data = make_image(900, 600)
    photo_id = uuid.uuid4()
    assert put_photo(officer, photo_id, data).status_code == 201
    cached = FileSystemStore(app.config["STORAGE_DIR"]).derived_path(sha(data), "medium")
    cached.unlink()
    response = fetch(officer, photo_id, "medium")
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.data)).size == (900, 600)  # never enlarged
    assert cached.is_file()


def test_a_transparent_png_gets_jpeg_sizes_over_white(officer):
    image = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    image.paste((200, 0, 0, 255), (0, 0, 200, 300))
    out = io.BytesIO()
    image.save(out, "PNG")
    photo_id = uuid.uuid4()
    assert put_photo(officer, photo_id, out.getvalue()).status_code == 201
    thumb = Image.open(io.BytesIO(fetch(officer, photo_id, "thumb").data))
    assert thumb.format == "JPEG" and thumb.mode == "RGB"
    right = thumb.getpixel((thumb.width - 5, thumb.height // 2))
    left = thumb.getpixel((5, thumb.height // 2))
    assert min(right) > 240 and left[0] > 150 > left[1]
    assert fetch(officer, photo_id).mimetype == "image/png"


def test_sweep_keeps_an_upload_an_inspection_names_without_metadata(app, world, login):
    from fieldapp.actor import Actor
    from fieldapp.db import utcnow
    from fieldapp.photos import operations

    officer = login("officer1")
    device = FakeDevice(officer)
    named, answered, loose = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    answers = {"S02": {"result": "fail", "note": "占道", "photo_ids": [str(answered)]}}
    device.push_ok(
        device.change(
            "inspection",
            uuid.uuid4(),
            new_inspection(world, ["officer1"], photo_ids=[str(named)], answers=answers),
        )
    )
    for photo_id, width in ((named, 120), (answered, 130), (loose, 140)):
        assert put_photo(officer, photo_id, make_image(width, 90)).status_code == 201
    store = operations.store_for(app.config)
    with app.app_context():
        later = utcnow() + timedelta(hours=73)
        report = operations.sweep(Actor.for_system("test"), store, later, timedelta(hours=72))
        db.session.commit()
        assert report.unclaimed == 1
        assert {u.id for u in db.session.query(PhotoUpload)} >= {named, answered}
        assert db.session.get(PhotoUpload, loose) is None


def test_sizes_are_cached_by_clients_with_their_etag(officer):
    photo_id = uuid.uuid4()
    assert put_photo(officer, photo_id, make_image()).status_code == 201
    first = fetch(officer, photo_id, "thumb")
    again = officer.client.get(
        f"/api/v1/photos/{photo_id}?size=thumb",
        headers={
            "Authorization": f"Bearer {officer.token}",
            "If-None-Match": first.headers["ETag"],
        },
        buffered=True,
    )
    assert again.status_code == 304 and again.data == b""
    assert fetch(officer, photo_id, "medium").headers["ETag"] != first.headers["ETag"]


# -- EXIF, without the app -----------------------------------------------------------------------


def exif_of(**fields) -> Image.Exif:
    from PIL import ExifTags

    exif = Image.Exif()
    detail = exif.get_ifd(ExifTags.IFD.Exif)
    for name, value in fields.items():
        detail[getattr(ExifTags.Base, name)] = value
    return exif


def test_exif_capture_time_uses_its_offset_or_the_local_zone():
    from fieldapp.photos.imaging import exif_taken_at

    local = exif_of(DateTimeOriginal="2026:11:20 17:35:00")
    assert exif_taken_at(local, "Asia/Shanghai").isoformat() == "2026-11-20T09:35:00+00:00"
    offset = exif_of(DateTimeOriginal="2026:11:20 17:35:00", OffsetTimeOriginal="+09:00")
    assert exif_taken_at(offset, "Asia/Shanghai").isoformat() == "2026-11-20T08:35:00+00:00"
    assert exif_taken_at(exif_of(DateTimeOriginal="0000:00:00 00:00:00"), "Asia/Shanghai") is None
    assert exif_taken_at(Image.Exif(), "Asia/Shanghai") is None


@pytest.fixture
def server_in_utc(monkeypatch):
    """The server process's own clock zone is UTC (as on most hosts), not Shanghai's."""
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("blank", ["\x00" * 6, " " * 6, "\x00"])
def test_a_blank_exif_offset_is_no_offset(server_in_utc, blank):
    """Cameras that do not know their zone fill the offset with NULs or blanks: the time is
    then local (FIELDAPP_LOCAL_TIMEZONE), never the server's own zone."""
    from fieldapp.photos.imaging import exif_taken_at

    exif = exif_of(DateTimeOriginal="2026:11:20 17:35:00", OffsetTimeOriginal=blank)
    assert exif_taken_at(exif, "Asia/Shanghai").isoformat() == "2026-11-20T09:35:00+00:00"


def test_exif_capture_time_prefers_original_then_digitized_never_the_edit_time():
    """IFD0 DateTime is when the file was last written (an editor moves it): an old photo
    re-saved during an inspection must not look taken during it."""
    from PIL import ExifTags

    from fieldapp.photos.imaging import exif_taken_at

    both = exif_of(
        DateTimeOriginal="2026:11:20 17:35:00",
        DateTimeDigitized="2026:11:20 17:36:00",
        OffsetTimeOriginal="+08:00",
    )
    assert exif_taken_at(both, "Asia/Shanghai").isoformat() == "2026-11-20T09:35:00+00:00"
    digitized = exif_of(DateTimeDigitized="2026:11:20 17:36:00", OffsetTimeDigitized="+09:00")
    assert exif_taken_at(digitized, "Asia/Shanghai").isoformat() == "2026-11-20T08:36:00+00:00"
    # OffsetTime (the zone the camera was set to when it wrote the file) stands in for a
    # missing offset of the capture time itself
    zoned = exif_of(DateTimeOriginal="2026:11:20 17:35:00", OffsetTime="+09:00")
    assert exif_taken_at(zoned, "Asia/Shanghai").isoformat() == "2026-11-20T08:35:00+00:00"
    edited_only = Image.Exif()
    edited_only[ExifTags.Base.DateTime] = "2026:11:21 10:00:00"
    assert exif_taken_at(edited_only, "Asia/Shanghai") is None


def test_exif_gps_in_every_hemisphere_and_nonsense_ignored():
    from PIL import ExifTags

    from fieldapp.photos.imaging import exif_position

    def gps(lat, lat_ref, lon, lon_ref) -> Image.Exif:
        exif = Image.Exif()
        ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
        ifd[ExifTags.GPS.GPSLatitude], ifd[ExifTags.GPS.GPSLatitudeRef] = lat, lat_ref
        ifd[ExifTags.GPS.GPSLongitude], ifd[ExifTags.GPS.GPSLongitudeRef] = lon, lon_ref
        return exif

    assert exif_position(gps((31.0, 22.0, 12.0), "N", (121.0, 28.0, 12.0), "E")) == (
        pytest.approx(121.47),
        pytest.approx(31.37),
    )
    assert exif_position(gps((33.0, 52.0, 0.0), "S", (151.0, 12.0, 0.0), "W"))[0] < 0
    assert exif_position(gps((0.0, 0.0, 0.0), "N", (0.0, 0.0, 0.0), "E")) == (None, None)
    assert exif_position(gps((95.0, 0.0, 0.0), "N", (10.0, 0.0, 0.0), "E")) == (None, None)
    assert exif_position(Image.Exif()) == (None, None)


def test_an_upload_may_start_with_patch_and_unknown_ids_have_nothing_to_resume(officer):
    data = make_image(700, 500)
    photo_id = uuid.uuid4()
    assert_error(patch_part(officer, photo_id, 0, data[:100]), 404, "not_found")
    assert_error(fetch(officer, photo_id), 404, "not_found")
    head = officer.client.head(
        f"/api/v1/photos/{photo_id}", headers={"Authorization": f"Bearer {officer.token}"}
    )
    assert head.status_code == 404
    first = patch_part(
        officer,
        photo_id,
        0,
        data[:300],
        headers={"X-Content-SHA256": sha(data), "Upload-Length": str(len(data))},
    )
    assert first.status_code == 204 and first.headers["Upload-Offset"] == "300"
    assert head_offset(officer, photo_id) == 300
    assert patch_part(officer, photo_id, 300, data[300:]).status_code == 201
    assert fetch(officer, photo_id).data == data
