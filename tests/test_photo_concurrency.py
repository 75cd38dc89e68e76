"""Concurrent uploads of one photo on PostgreSQL, with real commits (no per-test rollback):
the same bytes from several devices store one photo; different bytes store exactly one of
them and leave nothing of the others."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

from fieldapp.db import db
from fieldapp.photos import operations
from fieldapp.photos.models import PhotoUpload
from tests.conftest import RACE_WAIT, Api, at_once, sign_in, status_of, waiting_on_a_lock
from tests.evidence_helpers import make_image, put_photo, sha
from tests.review_helpers import push_inspection
from tests.sync_helpers import FakeDevice
from tests.sync_helpers import photo_metadata as sync_photo_metadata

UPLOADERS = 4


def signed_in(app, device_id: str) -> Api:
    return sign_in(app, "officer1", device_id)


def race(app, photo_id, payloads: list[bytes]) -> list[int]:
    apis = [signed_in(app, f"race-{n}") for n in range(len(payloads))]
    start = threading.Barrier(len(payloads))
    statuses: list[int] = [0] * len(payloads)
    errors: list[BaseException] = []

    def upload(n: int):
        try:
            start.wait(timeout=30)
            statuses[n] = put_photo(apis[n], photo_id, payloads[n]).status_code
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(len(payloads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return statuses


def test_the_same_photo_from_several_devices_at_once_is_stored_once(pg_app):
    app, _ = pg_app
    data = make_image(1600, 1200)
    photo_id = uuid.uuid4()
    statuses = race(app, photo_id, [data] * UPLOADERS)
    assert sorted(statuses) == [200] * (UPLOADERS - 1) + [201]
    with app.app_context():
        upload = db.session.get(PhotoUpload, photo_id)
        assert upload.sha256 == sha(data) and upload.size == len(data)


def test_different_bytes_at_once_keep_exactly_one_and_nothing_of_the_rest(pg_app):
    app, _ = pg_app
    payloads = [make_image(800 + 16 * n, 600) for n in range(UPLOADERS)]
    photo_id = uuid.uuid4()
    statuses = race(app, photo_id, payloads)
    assert sorted(statuses) == [201] + [409] * (UPLOADERS - 1)
    winner = payloads[statuses.index(201)]
    with app.app_context():
        assert db.session.get(PhotoUpload, photo_id).sha256 == sha(winner)
    originals = Path(app.config["STORAGE_DIR"]) / "originals"
    stored = {p.name for p in originals.rglob("*") if p.is_file()}
    assert sha(winner) in stored
    assert not {sha(p) for p in payloads if p is not winner} & stored
    assert not list((Path(app.config["STORAGE_DIR"]) / "staging").iterdir())


def test_two_parts_at_the_same_offset_at_once_append_once(pg_app):
    app, _ = pg_app
    from tests.evidence_helpers import patch_part

    data = make_image(2400, 1800, quality=95)
    photo_id = uuid.uuid4()
    first = signed_in(app, "resume-0")
    length = {"Upload-Length": str(len(data))}
    head = put_photo(first, photo_id, data[:1000], digest=sha(data), headers=length)
    assert head.status_code == 202
    apis = [first, signed_in(app, "resume-1")]
    start = threading.Barrier(2)
    statuses: list[int] = [0, 0]
    errors: list[BaseException] = []

    def send(n: int):
        try:
            start.wait(timeout=30)
            statuses[n] = patch_part(apis[n], photo_id, 1000, data[1000:]).status_code
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(statuses) == [201, 409]
    with app.app_context():
        upload = db.session.get(PhotoUpload, photo_id)
        assert upload.sha256 == sha(data) and upload.size == len(data)


def test_a_first_part_racing_another_first_part_keeps_the_others_bytes(pg_app):
    """Two devices (or one retrying over a flaky link) send the first part of a photo nobody
    has started yet. The one that comes second waits for the first to commit and is told where
    that one got to (409 offset_mismatch with Upload-Offset, as API codes go), instead of
    cutting the first one's bytes and failing with a code clients do not know."""
    import io

    import sqlalchemy as sa

    from fieldapp.actor import Actor
    from fieldapp.auth.models import User
    from fieldapp.auth.policy import Policy
    from tests.evidence_helpers import patch_part

    app, _ = pg_app
    data = make_image(2400, 1800, quality=95)
    photo_id = uuid.uuid4()
    header = {"X-Content-SHA256": sha(data), "Upload-Length": str(len(data))}
    second = signed_in(app, "first-part-1")
    answer: list = []
    errors: list[BaseException] = []

    def send_second_part():
        try:
            answer.append(patch_part(second, photo_id, 0, data[:500], headers=header))
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)

    with app.app_context():
        # The first request: its part written, its transaction not committed yet.
        user = db.session.scalar(sa.select(User).where(User.username == "officer1"))
        actor = Actor(user=user, device_id="first-part-0")
        first = operations.append_part(
            actor,
            Policy(actor),
            photo_id,
            io.BytesIO(data[:1000]),
            0,
            sha(data),
            app.extensions["fieldapp.photos"],
            operations.store_for(app.config),
            upload_length=len(data),
        )
        assert first.status == "partial" and first.offset == 1000
        thread = threading.Thread(target=send_second_part)
        thread.start()
        # The second request is held by the first one's claim on the id (a lock wait), and
        # nothing it did may touch the first one's bytes before that.
        while not waiting_on_a_lock() and thread.is_alive():
            thread.join(timeout=0.05)
        db.session.commit()
    thread.join(timeout=120)
    assert not errors, errors
    [response] = answer
    assert response.status_code == 409, response.get_json()
    assert response.get_json()["error"] == "offset_mismatch"
    assert response.headers["Upload-Offset"] == "1000"
    head = second.client.head(
        f"/api/v1/photos/{photo_id}", headers={"Authorization": f"Bearer {second.token}"}
    )
    assert head.headers["Upload-Offset"] == "1000"
    done = patch_part(second, photo_id, 1000, data[1000:])
    assert done.status_code == 201, done.get_json()
    with app.app_context():
        assert db.session.get(PhotoUpload, photo_id).sha256 == sha(data)
    original = second.client.get(
        f"/api/v1/photos/{photo_id}",
        headers={"Authorization": f"Bearer {second.token}"},
        buffered=True,
    )
    assert original.data == data


def _photo_of_a_draft(world, mine: FakeDevice, image: bytes) -> tuple[uuid.UUID, dict]:
    """A draft inspection of ``mine``'s officer and officer2, pushed; the id of a photo for
    it, and its metadata naming ``image`` (not pushed)."""
    inspection_id = push_inspection(world, mine, status="draft")
    metadata = sync_photo_metadata(inspection_id, item_code="S01", sha256=sha(image))
    return uuid.uuid4(), metadata | {"size": len(image)}


def test_an_upload_is_not_refused_because_its_metadata_was_edited_meanwhile(pg_app, monkeypatch):
    """Officer 1's pad uploads a photo's bytes while officer 2, the other officer of the pair,
    moves the photo to another checklist item from his pad: the upload is stored (201) and the
    metadata, with its new item, is marked uploaded; the two writes touch different things.

    Before, the upload marked the version of the metadata it had read when it began, and the
    edit had moved it on: 409 ``version_conflict``, which API.md does not have for this
    endpoint and the reference client takes as final (the photo marked failed, its evidence
    never sent again)."""
    app, world = pg_app
    mine = FakeDevice(signed_in(app, "edit-upload-o1"))
    colleague = FakeDevice(sign_in(app, "officer2", "edit-upload-o2"))
    image = make_image(320, 240)
    photo_id, metadata = _photo_of_a_draft(world, mine, image)
    [created] = mine.push_ok(mine.change("photo", photo_id, metadata))
    assert created["status"] == "applied", created

    read = threading.Event()  # the upload has read the metadata
    edited = threading.Event()
    lock_upload = operations._lock_upload

    def lock_after_the_edit(photo_id):
        if threading.current_thread().name == "upload":
            read.set()
            edited.wait(RACE_WAIT)
        return lock_upload(photo_id)

    monkeypatch.setattr(operations, "_lock_upload", lock_after_the_edit)

    def edit():
        read.wait(RACE_WAIT)
        try:
            return colleague.push_ok(
                colleague.change(
                    "photo", photo_id, {"item_code": "S02"}, base_version=created["version"]
                )
            )
        finally:
            edited.set()

    answers = at_once(("upload", lambda: put_photo(mine.api, photo_id, image)), ("edit", edit))
    monkeypatch.undo()
    assert answers["edit"][0]["status"] == "applied", answers
    assert status_of(answers["upload"]) == 201, answers["upload"].get_json()
    [photo] = [c for c in mine.pull_all() if c["id"] == str(photo_id)]
    assert (photo["data"]["item_code"], photo["data"]["uploaded"]) == ("S02", True), photo


def test_metadata_pushed_while_its_bytes_arrive_is_marked_uploaded(pg_app, monkeypatch):
    """The pad pushes a photo's metadata while its bytes are still arriving (a second sync
    started over a slow upload): the metadata finds no stored bytes yet, and the upload,
    which began before the metadata existed, marks it uploaded when it stores them.

    Before, the upload only marked metadata it had found when it began, and the push found
    no bytes to claim: the photo stayed ``uploaded: false`` for good, its bytes stored."""
    app, world = pg_app
    mine = FakeDevice(signed_in(app, "late-metadata"))
    image = make_image(320, 240)
    photo_id, metadata = _photo_of_a_draft(world, mine, image)

    arriving = threading.Event()  # the upload has begun, with no metadata
    pushed = threading.Event()
    lock_upload = operations._lock_upload

    def lock_after_the_push(photo_id):
        if threading.current_thread().name == "upload":
            arriving.set()
            pushed.wait(RACE_WAIT)
        return lock_upload(photo_id)

    monkeypatch.setattr(operations, "_lock_upload", lock_after_the_push)

    def push():
        arriving.wait(RACE_WAIT)
        try:
            return mine.push_ok(mine.change("photo", photo_id, metadata))
        finally:
            pushed.set()

    answers = at_once(("upload", lambda: put_photo(mine.api, photo_id, image)), ("push", push))
    monkeypatch.undo()
    assert answers["push"][0]["status"] == "applied", answers
    assert status_of(answers["upload"]) == 201, answers["upload"].get_json()
    [photo] = [c for c in mine.pull_all() if c["id"] == str(photo_id)]
    assert photo["data"]["uploaded"] is True, photo


def test_metadata_pushed_while_a_strangers_last_part_arrives_still_lets_the_officers_bytes_in(
    pg_app, monkeypatch
):
    """Another squadron's officer sends the last part of other bytes under a photo id while the
    officer's pad pushes the photo's metadata. The push does not wait for that upload (which
    takes the change counter after the upload's row, where a push takes the counter first:
    waiting would deadlock, and one of the two answer 503); the stranger's bytes, stored
    meanwhile, are discarded (audited) when the officer's own go in, and never read as the
    photo's."""
    from tests.conftest import audit_entries
    from tests.evidence_helpers import patch_part

    app, world = pg_app
    mine = FakeDevice(signed_in(app, "stranger-race-o1"))
    stranger = sign_in(app, "officer3", "stranger-race-o3")
    image, other = make_image(320, 240), make_image(300, 200)
    photo_id, metadata = _photo_of_a_draft(world, mine, image)
    first = put_photo(
        stranger,
        photo_id,
        other[:1000],
        digest=sha(other),
        headers={"Upload-Length": str(len(other))},
    )
    assert first.status_code == 202, first.get_json()

    locked = threading.Event()  # the stranger's last part holds the upload's row
    pushed = threading.Event()
    lock_upload = operations._lock_upload

    def hold_the_row_over_the_push(photo_id):
        upload = lock_upload(photo_id)
        if threading.current_thread().name == "stranger":
            locked.set()
            pushed.wait(RACE_WAIT)
        return upload

    monkeypatch.setattr(operations, "_lock_upload", hold_the_row_over_the_push)

    def push():
        locked.wait(RACE_WAIT)
        try:
            return mine.push_ok(mine.change("photo", photo_id, metadata))
        finally:
            pushed.set()

    answers = at_once(
        ("stranger", lambda: patch_part(stranger, photo_id, 1000, other[1000:])), ("push", push)
    )
    monkeypatch.undo()
    assert answers["push"][0]["status"] == "applied", answers
    assert status_of(answers["stranger"]) == 201, answers["stranger"]
    auth = {"Authorization": f"Bearer {mine.api.token}"}
    head = mine.api.client.head(f"/api/v1/photos/{photo_id}", headers=auth)
    assert head.headers["Upload-Offset"] == "0" and "X-Content-SHA256" not in head.headers
    assert put_photo(mine.api, photo_id, image).status_code == 201
    original = mine.api.client.get(f"/api/v1/photos/{photo_id}", headers=auth, buffered=True)
    assert original.data == image
    [discarded] = audit_entries(app, action="photo.upload_discarded", record_id=str(photo_id))
    assert discarded.before["sha256"] == sha(other)
    [photo] = [c for c in mine.pull_all() if c["id"] == str(photo_id)]
    assert photo["data"]["uploaded"] is True, photo
