"""The reference device client's photos: metadata synced, bytes uploaded in parts, resumed
where the server stopped, refused bytes kept aside with the reason."""

from __future__ import annotations

import io
import time
import uuid
from datetime import datetime

import pytest
from PIL import Image

from sync.client import Response, SyncClient, SyncError, TransportError
from tests.conftest import PASSWORD
from tests.evidence_helpers import make_image, put_photo, sha
from tests.sync_helpers import (
    FlaskTransport,
    make_client,
    new_inspection,
    photo_metadata,
    until_through,
)
from tests.test_sync_client_edges import lose_the_answer_of_the_next_push, synced_inspection

PART = 4096


def photo_file(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def inspection_with_photos(pad, world, *paths, item_code="S01") -> tuple[uuid.UUID, list[str]]:
    """What the app does: the inspection first, then a photo per file, named in an answer."""
    inspection_id = uuid.uuid4()
    pad.save("inspection", inspection_id, new_inspection(world, ["officer1", "officer2"]))
    photo_ids = [
        pad.add_photo(
            path, inspection_id, taken_at="2026-11-20T09:41:00+08:00", item_code=item_code
        )
        for path in paths
    ]
    answers = dict(new_inspection(world, ["officer1"])["answers"])
    answers[item_code] = {"result": "fail", "note": "店外堆物", "photo_ids": photo_ids}
    pad.save("inspection", inspection_id, {"answers": answers})
    return inspection_id, photo_ids


def test_photos_taken_offline_reach_the_server_byte_for_byte(client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-photos")
    jpeg, png = make_image(1200, 900), make_image(300, 200, "PNG")
    inspection_id, (jpeg_id, png_id) = inspection_with_photos(
        pad, world, photo_file(tmp_path, "a.jpg", jpeg), photo_file(tmp_path, "b.png", png)
    )
    assert len(jpeg) > 5 * PART  # so that it travels in several parts
    pad.push()
    assert pad.failed() == []
    assert pad.upload_photos(part_bytes=PART) == {jpeg_id: "stored", png_id: "stored"}
    assert pad.photo(jpeg_id, "original") == jpeg and pad.photo(png_id, "original") == png
    assert [u["state"] for u in pad.uploads()] == ["stored", "stored"]
    pad.pull()
    photo = pad.get("photo", jpeg_id)
    assert photo["uploaded"] is True and photo["sha256"] == sha(jpeg)
    assert photo["content_type"] == "image/jpeg" and pad.get("photo", png_id)["size"] == len(png)
    answer = pad.get("inspection", inspection_id)["answers"]["S01"]
    assert answer["photo_ids"] == [jpeg_id, png_id]
    assert pad.upload_photos() == {}  # nothing left to send


def test_a_colleague_sees_the_photos_once_their_bytes_arrived(client, world, tmp_path):
    mine = make_client(client, tmp_path, "officer1", "pad-taker")
    data = make_image(1200, 900)
    _, (photo_id,) = inspection_with_photos(mine, world, photo_file(tmp_path, "c.jpg", data))
    mine.push()  # the metadata only: the bytes are still on the device
    colleague = make_client(client, tmp_path, "officer2", "pad-viewer")
    colleague.pull()
    assert colleague.get("photo", photo_id)["uploaded"] is False
    assert colleague.photo(photo_id) is None
    mine.upload_photos()
    assert colleague.photo(photo_id, "original") == data
    with Image.open(io.BytesIO(colleague.photo(photo_id))) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) == 256
    outsider = make_client(client, tmp_path, "officer3", "pad-outsider")
    assert outsider.photo(photo_id) is None  # another squadron's photo: as if it did not exist


class CutOff(FlaskTransport):
    """A link that dies after some parts (the last one arrives, its answer does not) and stays
    down until it is restored; records what the client asks."""

    def __init__(self, client, parts_before_cut: int):
        super().__init__(client)
        self.parts_left = parts_before_cut
        self.down = False
        self.asked: list[tuple[str, str | None]] = []

    def request(self, method, path, **kwargs):
        if self.down:
            raise TransportError("no signal")
        self.asked.append((method, (kwargs.get("headers") or {}).get("Upload-Offset")))
        answer = super().request(method, path, **kwargs)
        if method == "PATCH":
            if self.parts_left == 0:
                self.down = True
                raise TransportError("the answer was lost, then the signal")
            self.parts_left -= 1
        return answer


def test_an_upload_cut_off_resumes_where_the_server_stopped(client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-cut")
    data = make_image(1600, 1200)
    _, (photo_id,) = inspection_with_photos(pad, world, photo_file(tmp_path, "cut.jpg", data))
    pad.push()
    link = CutOff(client, parts_before_cut=2)
    pad.transport = link
    with pytest.raises(TransportError):
        pad.upload_photos(part_bytes=PART)
    assert [u["state"] for u in pad.uploads()] == ["pending"]
    held = PART * 4  # the first part (PUT) and three PATCHes, the last one unanswered

    link.down, link.asked, link.parts_left = False, [], 1000
    assert pad.upload_photos(part_bytes=PART) == {photo_id: "stored"}
    # It asks how far the server is, and goes on from there: nothing is sent twice.
    assert link.asked[:2] == [("HEAD", None), ("PATCH", str(held))]
    assert "PUT" not in [method for method, _ in link.asked]
    assert pad.photo(photo_id, "original") == data


def test_lost_answers_and_resets_never_corrupt_an_upload(client, world, tmp_path):
    pad = make_client(
        client, tmp_path, "officer1", "pad-flaky", lose_answers=0.3, fail_before=0.2, seed=11
    )
    data = make_image(1600, 1200)
    _, (photo_id,) = inspection_with_photos(pad, world, photo_file(tmp_path, "f.jpg", data))
    until_through(pad.push)
    states = until_through(lambda: pad.upload_photos(part_bytes=PART))
    assert states == {photo_id: "stored"}
    assert until_through(lambda: pad.photo(photo_id, "original")) == data


def test_bytes_the_server_refuses_are_kept_aside_with_its_reason(client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-refused")
    broken = b"\xff\xd8\xff\xe0" + b"not a photo at all " * 50  # a JPEG's first bytes, no more
    good = make_image(200, 150)
    _, (broken_id, good_id) = inspection_with_photos(
        pad, world, photo_file(tmp_path, "broken.jpg", broken), photo_file(tmp_path, "ok.jpg", good)
    )
    pad.push()
    assert pad.upload_photos() == {broken_id: "failed", good_id: "stored"}
    refused = pad.uploads()[0]
    assert refused["photo_id"] == broken_id and refused["state"] == "failed"
    assert refused["error"]["error"] == "bad_image"
    assert pad.upload_photos() == {}  # refused for good: not sent again


def test_other_bytes_under_a_stored_photo_id_are_refused(client, world, tmp_path):
    first = make_client(client, tmp_path, "officer1", "pad-first")
    data = make_image(320, 240)
    inspection_id, (photo_id,) = inspection_with_photos(
        first, world, photo_file(tmp_path, "first.jpg", data)
    )
    first.sync()
    colleague = make_client(client, tmp_path, "officer2", "pad-second")
    other = make_image(320, 240, quality=40)
    colleague.add_photo(
        photo_file(tmp_path, "other.jpg", other),
        inspection_id,
        taken_at="2026-11-20T09:45:00+08:00",
        photo_id=photo_id,
    )
    colleague.push()
    [metadata] = colleague.failed()
    assert metadata["error"]["errors"]["json"]["sha256"]
    assert colleague.upload_photos() == {photo_id: "failed"}
    assert colleague.uploads()[0]["error"]["error"] == "id_conflict"
    assert first.photo(photo_id, "original") == data  # the evidence is untouched


def test_a_strangers_unfinished_upload_under_the_id_does_not_bar_the_officers_photo(
    client, world, login, tmp_path
):
    """Someone outside the inspection (here another squadron's officer) starts an upload under
    a photo id before its metadata arrives. The officer's device then syncs the metadata and
    uploads its bytes the documented way (HEAD, then PATCH from Upload-Offset): the photo
    reaches the server, as it does when the stranger's bytes were complete."""
    pad = make_client(client, tmp_path, "officer1", "pad-stranger")
    real = make_image(1200, 900)
    inspection_id = uuid.uuid4()
    pad.save("inspection", inspection_id, new_inspection(world, ["officer1", "officer2"]))
    photo_id = pad.add_photo(
        photo_file(tmp_path, "real.jpg", real), inspection_id, taken_at="2026-11-20T09:41:00+08:00"
    )
    other = make_image(1000, 800)
    stranger = login("officer3")
    response = put_photo(
        stranger,
        photo_id,
        other[:2000],
        digest=sha(other),
        headers={"Upload-Length": str(len(other))},
    )
    assert response.status_code == 202

    pad.push()

    assert pad.failed() == []
    assert pad.upload_photos(part_bytes=PART) == {photo_id: "stored"}
    assert pad.photo(photo_id, "original") == real


def test_a_photo_file_gone_before_its_upload_is_reported(client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-gone")
    path = photo_file(tmp_path, "gone.jpg", make_image(64, 48))
    _, (photo_id,) = inspection_with_photos(pad, world, path)
    path.unlink()
    assert pad.upload_photos() == {photo_id: "failed"}
    assert pad.uploads()[0]["error"]["error"] == "file_missing"


def test_only_images_are_queued(client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-check")
    inspection_id = uuid.uuid4()
    notes = photo_file(tmp_path, "notes.jpg", "整改通知书草稿".encode())
    with pytest.raises(ValueError, match="not a JPEG, PNG or WebP"):
        pad.add_photo(notes, inspection_id, taken_at="2026-11-20T09:41:00+08:00")
    with pytest.raises(FileNotFoundError):
        pad.add_photo(tmp_path / "missing.jpg", inspection_id, taken_at="2026-11-20T09:41:00Z")
    with pytest.raises(ValueError, match="time zone"):
        pad.add_photo(
            photo_file(tmp_path, "ok.jpg", make_image(64, 48)),
            inspection_id,
            taken_at=datetime(2026, 11, 20, 9, 41),
        )
    assert pad.uploads() == [] and pad.pending() == 0


def test_a_photo_discarded_before_its_upload_is_not_uploaded(client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-discard")
    kept, discarded = make_image(200, 150), make_image(210, 150)
    _, (kept_id, discarded_id) = inspection_with_photos(
        pad, world, photo_file(tmp_path, "kept.jpg", kept), photo_file(tmp_path, "x.jpg", discarded)
    )
    pad.push()
    pad.save("photo", discarded_id, {}, op="delete")
    pad.sync()
    assert [(u["photo_id"], u["state"]) for u in pad.uploads()] == [(kept_id, "stored")]
    assert pad.get("photo", discarded_id) is None
    answer = client.head(
        f"/api/v1/photos/{discarded_id}", headers={"Authorization": f"Bearer {pad.token}"}
    )
    assert answer.status_code == 404  # no bytes of it ever reached the server


def test_a_signed_out_device_keeps_its_photos_for_after_the_sign_in(client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-signed-out")
    data = make_image(320, 240)
    _, (photo_id,) = inspection_with_photos(pad, world, photo_file(tmp_path, "later.jpg", data))
    pad.push()
    revoked = client.delete("/api/v1/auth/token", headers={"Authorization": f"Bearer {pad.token}"})
    assert revoked.status_code == 204
    with pytest.raises(SyncError, match="401"):
        pad.upload_photos()
    assert [u["state"] for u in pad.uploads()] == ["pending"]
    pad.login("officer1", PASSWORD)
    assert pad.upload_photos() == {photo_id: "stored"}
    assert pad.photo(photo_id, "original") == data
    with pytest.raises(ValueError, match="already queued"):
        pad.add_photo(
            photo_file(tmp_path, "again.jpg", data),
            uuid.uuid4(),
            taken_at="2026-11-20T09:41:00Z",
            photo_id=photo_id,
        )


class Throttled(FlaskTransport):
    """The app, behind a gateway that answers the next ``throttled`` photo uploads with 429."""

    throttled = 0

    def request(self, method, path, **kwargs):
        if method in ("PUT", "PATCH") and path.startswith("/photos/") and self.throttled:
            self.throttled -= 1
            body = {"code": 429, "status": "Too Many Requests", "error": "rate_limited"}
            return Response(429, body | {"message": "slow down", "errors": {}}, {})
        return super().request(method, path, **kwargs)


def test_a_photo_upload_throttled_for_a_while_is_uploaded_later(client, world, tmp_path):
    """429 means "try again later": a photo whose upload meets it on every retry (a gateway
    throttling a busy hour) stays pending, with the reason, and goes at the next sync once the
    throttling has ended. Only bytes refused for good are kept aside."""
    pad = SyncClient(
        Throttled(client), str(tmp_path / "pad-429.sqlite3"), "pad-429", sleep=lambda s: None
    )
    pad.login("officer1", PASSWORD)
    _, (photo_id,) = inspection_with_photos(
        pad, world, photo_file(tmp_path, "shop.jpg", make_image(640, 480))
    )
    pad.transport.throttled = pad.max_attempts

    assert pad.sync().uploads == {photo_id: "pending"}
    [waiting] = pad.uploads()
    assert (waiting["state"], waiting["error"]["error"]) == ("pending", "rate_limited")

    assert pad.sync().uploads == {photo_id: "stored"}


class PhotosUnreachable(FlaskTransport):
    """The app, where photo requests (big uploads over a weak 4G link) do not get through while
    ``photos_down`` is set, and nothing does while ``down`` is."""

    photos_down = down = False

    def request(self, method, path, **kwargs):
        if self.down or (self.photos_down and path.startswith("/photos/")):
            raise TransportError("the link dropped")
        return super().request(method, path, **kwargs)


def a_lost_conflict_and_a_photo(client, world, tmp_path):
    """My pad with an edit that loses to a colleague's later one, and a photo to upload."""
    mine = SyncClient(
        PhotosUnreachable(client), str(tmp_path / "pad-c1.sqlite3"), "pad-c1", sleep=lambda s: 0
    )
    mine.login("officer1", PASSWORD)
    colleague = make_client(client, tmp_path, "officer2", "pad-c2")
    inspection_id = uuid.uuid4()
    mine.save("inspection", inspection_id, new_inspection(world, ["officer1", "officer2"]))
    mine.sync()
    colleague.pull()
    mine.clock = lambda: time.time() - 60  # my edit is the earlier one: the colleague's wins
    mine.save("inspection", inspection_id, {"findings": "门前堆物"})
    colleague.save("inspection", inspection_id, {"findings": "已清理"})
    colleague.sync()
    photo = photo_file(tmp_path, "shop.jpg", make_image(640, 480))
    photo_id = mine.add_photo(photo, inspection_id, taken_at="2026-11-20T09:41:00+08:00")
    return mine, photo_id


def test_a_sync_whose_photo_upload_drops_still_tells_the_officer_of_lost_conflicts(
    client, world, tmp_path
):
    """The push is small, the photo large: on 4G the upload after the push is what drops. The
    sync still reports the push's conflicts (how the app tells the officer their value lost),
    with the photo left pending; the next sync uploads it."""
    mine, photo_id = a_lost_conflict_and_a_photo(client, world, tmp_path)
    mine.transport.photos_down = True

    report = mine.sync()

    assert [c["kept"] for r in report.conflicts for c in r["conflicts"]] == ["server"]
    assert report.uploads == {photo_id: "pending"}
    mine.transport.photos_down = False
    assert mine.sync().uploads == {photo_id: "stored"}


def test_a_sync_cut_off_after_its_push_tells_the_conflicts_in_the_next_report(
    client, world, tmp_path
):
    """When the link drops after the push (before the pull is through), the sync raises, and
    the push's results, already settled, come in the next sync's report."""
    mine, _ = a_lost_conflict_and_a_photo(client, world, tmp_path)
    pull = mine.pull

    def pull_with_the_link_down(*args, **kwargs):
        mine.transport.down = True
        return pull(*args, **kwargs)

    mine.pull = pull_with_the_link_down
    with pytest.raises(TransportError):
        mine.sync()
    mine.pull = pull
    mine.transport.down = False

    told = mine.sync().conflicts
    assert [c["kept"] for r in told for c in r["conflicts"]] == ["server"]
    assert mine.sync().results == []  # told once


def a_draft_a_colleague_deletes(client, world, tmp_path, run: str):
    """officer1's pad syncs a draft of both officers; officer2's pad pulls it and deletes it.
    Returns (officer1's pad, the draft's id)."""
    mine = make_client(client, tmp_path, "officer1", f"pad-{run}-1")
    colleague = make_client(client, tmp_path, "officer2", f"pad-{run}-2")
    inspection_id = synced_inspection(mine, world, officers=("officer1", "officer2"))
    colleague.pull()
    colleague.save("inspection", inspection_id, {}, op="delete")
    assert [r["status"] for r in colleague.sync().results] == ["applied"]
    return mine, inspection_id


def test_a_photo_of_an_inspection_deleted_meanwhile_does_not_stay_on_the_pad_for_ever(
    client, world, tmp_path, login
):
    """The officer, offline, takes a photo for the draft; a colleague deleted the draft
    meanwhile. The push answers `conflict` (kept: server, whose side is "deleted"), the photo
    waits in the leader's conflict log, and the pull takes the draft off the pad. The pad
    shows the photo as the server holds it: not there. It showed it for ever, a photo of an
    inspection the pad no longer has, with nothing queued and no pull that would ever mention
    it (the server never had the photo)."""
    mine, inspection_id = a_draft_a_colleague_deletes(client, world, tmp_path, "orphan")
    path = tmp_path / "shop.jpg"
    path.write_bytes(make_image(300, 200))
    photo_id = mine.add_photo(path, inspection_id, taken_at="2026-11-20T09:41:00+08:00")

    report = mine.sync()

    assert [(r["status"], r["conflicts"][0]["kept"]) for r in report.results] == [
        ("conflict", "server")
    ]
    [entry] = login("leader1").get(f"/api/v1/conflicts?record_id={photo_id}").get_json()["items"]
    assert entry["server_value"]["deleted"] is True  # the officer's photo waits there
    assert mine.get("inspection", inspection_id) is None  # the pull took the draft off
    mine.sync()
    assert mine.pending() == 0 and mine.failed() == []
    assert mine.get("photo", photo_id) is None, mine.get("photo", photo_id)
    assert photo_id not in mine.records("photo")


def test_an_edit_of_a_photo_queued_behind_its_create_answered_conflict_is_not_refused(
    client, world, tmp_path, login
):
    """Same story, with the push's answer lost on 4G: the officer then corrects the photo's
    item (a change of its own, the create having been sent). The next push answers the create
    `conflict` again (replayed); the correction then goes with the whole record the create
    held, and waits beside the deletion too. Sent bare (`{"item_code"}`, no base) it was
    refused for good for fields the officer never touched, and a leader accepting the photo
    in the log got the old item."""
    mine, inspection_id = a_draft_a_colleague_deletes(client, world, tmp_path, "behind")
    photo_id = str(uuid.uuid4())
    mine.save("photo", photo_id, photo_metadata(inspection_id, item_code="S01"))
    lose_the_answer_of_the_next_push(mine)
    mine.save("photo", photo_id, {"item_code": "S02"})

    report = mine.sync()

    assert report.results[0]["status"] == "conflict"
    assert mine.failed() == [], [f["error"] for f in mine.failed()]
    entries = login("leader1").get(f"/api/v1/conflicts?record_id={photo_id}").get_json()["items"]
    assert any((e["client_value"] or {}).get("item_code") == "S02" for e in entries), entries
