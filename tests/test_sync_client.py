"""The reference device client against the server: outbox, retries, lost answers, pull."""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from contextlib import contextmanager

import pytest
from flask_migrate import upgrade
from werkzeug.serving import make_server

from fieldapp import create_app
from fieldapp.db import db
from sync.client import SyncClient, TransportError
from tests.conftest import FAST_PASSWORDS, PASSWORD, build_world, detach_all
from tests.evidence_helpers import make_image
from tests.sync_helpers import FlaskTransport, make_client, new_inspection, until_through


def test_offline_work_reaches_the_server_and_comes_back(client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-1")
    inspection_id = uuid.uuid4()
    pad.save("inspection", inspection_id, new_inspection(world, ["officer1"]))
    pad.save("inspection", inspection_id, {"findings": "门口堆放纸箱"})
    assert pad.pending() == 1  # the edit is folded into the create, which was not sent yet
    pad.sync()
    assert pad.pending() == 0 and pad.failed() == []
    assert pad.version("inspection", inspection_id) == 1
    pad.save("inspection", inspection_id, {"outcome": "corrected_on_site"})
    [result] = pad.push()
    assert result["status"] == "applied" and result["version"] == 2  # based on version 1
    pad.pull()
    local = pad.get("inspection", inspection_id)
    assert local["findings"] == "门口堆放纸箱" and local["outcome"] == "corrected_on_site"
    other = make_client(client, tmp_path, "officer2", "pad-2")
    other.pull()
    assert other.get("inspection", inspection_id)["findings"] == "门口堆放纸箱"


def run_workload(pad: SyncClient, world, ids) -> None:
    for record in ids:
        pad.save("inspection", record, new_inspection(world, ["officer1"]))
    until_through(pad.push)
    for n, record in enumerate(ids):
        pad.save("inspection", record, {"findings": f"第{n}条"})
    until_through(pad.sync)


def test_lost_answers_and_outages_change_nothing_but_the_time_it_takes(
    app, client, world, tmp_path
):
    ids = [uuid.uuid4() for _ in range(12)]
    flaky = make_client(
        client,
        tmp_path,
        "officer1",
        "flaky",
        lose_answers=0.35,
        fail_before=0.15,
        unavailable=0.15,
        seed=7,
    )
    flaky.batch_size = 5
    run_workload(flaky, world, ids)
    assert flaky.transport.calls > 8  # it really did have to retry
    with app.app_context():
        from fieldapp.inspections.models import Inspection
        from sync.models import Conflict

        stored = {
            r.id: (r.version, r.findings)
            for r in db.session.query(Inspection).filter(Inspection.id.in_(ids))
        }
        assert db.session.query(Conflict).count() == 0
    assert stored == {record: (2, f"第{n}条") for n, record in enumerate(ids)}
    assert flaky.pending() == 0 and flaky.failed() == []


def test_a_change_waiting_for_its_record_stays_queued(client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-3")
    inspection_id, photo_id = uuid.uuid4(), uuid.uuid4()
    pad.save(
        "photo",
        photo_id,
        {
            "inspection_id": str(inspection_id),
            "taken_at": "2026-11-20T09:35:00+08:00",
            "sha256": "cd" * 32,
            "size": 10,
            "content_type": "image/png",
        },
    )
    pad.push()
    assert pad.pending() == 1 and pad.failed() == []
    pad.save("inspection", inspection_id, new_inspection(world, ["officer1"]))
    results = pad.push()  # the inspection goes first, then the photo waiting for it
    assert [r["status"] for r in results] == ["rejected", "applied", "applied"]
    assert [r["id"] for r in results] == [str(photo_id), str(inspection_id), str(photo_id)]
    assert pad.pending() == 0


def test_a_sync_tells_the_officer_which_of_their_values_lost_a_conflict(client, world, tmp_path):
    mine = make_client(client, tmp_path, "officer1", "pad-mine")
    colleague = make_client(client, tmp_path, "officer2", "pad-colleague")
    inspection_id = uuid.uuid4()
    mine.save("inspection", inspection_id, new_inspection(world, ["officer1", "officer2"]))
    assert [r["status"] for r in mine.sync().results] == ["applied"]
    colleague.pull()
    colleague.clock = lambda: time.time() - 30  # its edit is the earlier one, whenever it goes
    colleague.save("inspection", inspection_id, {"findings": "已清理", "outcome": "compliant"})
    mine.save("inspection", inspection_id, {"findings": "门前堆物"})
    first = colleague.sync()
    assert first.conflicts == [] and first.rejected == [] and first.uploads == {}
    report = mine.sync()  # the same base, the same field on both sides: the later hlc wins
    [conflict] = report.conflicts
    assert conflict["id"] == str(inspection_id)
    assert [(c["field"], c["kept"]) for c in conflict["conflicts"]] == [("findings", "client")]
    assert report.pulled >= 1 and report.rejected == []
    assert mine.get("inspection", inspection_id)["outcome"] == "compliant"  # merged


def test_a_change_refused_for_good_is_kept_with_its_reason(client, world, tmp_path):
    pad = make_client(client, tmp_path, "officer1", "pad-4")
    pad.save("inspection", uuid.uuid4(), new_inspection(world, ["officer1"], origin="teleport"))
    pad.push()
    [refused] = pad.failed()
    assert (
        refused["error"]["error"] == "validation_failed"
        and "origin" in refused["error"]["errors"]["json"]
    )
    assert pad.pending() == 0


def test_hlc_never_goes_backwards_when_the_wall_clock_does(tmp_path):
    times = iter([100.0, 100.0, 99.0, 101.0])
    pad = SyncClient(
        FlaskTransport(None), str(tmp_path / "c.sqlite3"), "pad-c", clock=lambda: next(times)
    )
    clocks = [pad.next_hlc() for _ in range(4)]
    assert clocks == sorted(clocks) and len(set(clocks)) == 4


# -- over real HTTP --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """The app on a loopback port with its own SQLite database (real commits, real sockets)."""
    import os

    instance = tmp_path_factory.mktemp("live")
    os.environ["FIELDAPP_INSTANCE_PATH"] = str(instance)
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance / 'live.sqlite3'}", **FAST_PASSWORDS}
    )
    with app.app_context():
        upgrade()
        world = build_world(app)
        db.session.commit()
        detach_all()
    app.wsgi_app = RecordedBodies(app.wsgi_app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/api/v1", world, app.wsgi_app.seen
    server.shutdown()
    with app.app_context():
        db.engine.dispose()


class RecordedBodies:
    """WSGI middleware noting each request's path, Content-Encoding and body size as sent."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        self.seen: list[tuple[str, str, int]] = []

    def __call__(self, environ, start_response):
        self.seen.append(
            (
                environ["PATH_INFO"],
                environ.get("HTTP_CONTENT_ENCODING", ""),
                int(environ.get("CONTENT_LENGTH") or 0),
            )
        )
        return self.wsgi_app(environ, start_response)


def test_the_client_over_http(live_server, tmp_path):
    url, world, _ = live_server
    pad = SyncClient(url, str(tmp_path / "http.sqlite3"), "pad-http")
    assert pad.login("officer1", PASSWORD)["username"] == "officer1"
    inspection_id = uuid.uuid4()
    photo = tmp_path / "shopfront.jpg"
    photo.write_bytes(make_image(1600, 1200))
    photo_id = pad.add_photo(photo, inspection_id, taken_at="2026-11-20T09:41:00+08:00")
    pad.save(
        "inspection",
        inspection_id,
        new_inspection(world, ["officer1"], status="submitted", photo_ids=[photo_id]),
    )
    pad.sync()
    assert pad.failed() == [] and pad.get("inspection", inspection_id)["status"] == "submitted"
    assert [u["state"] for u in pad.uploads()] == ["stored"]
    assert pad.get("photo", photo_id)["uploaded"] is True
    assert pad.photo(photo_id, "original") == photo.read_bytes()
    assert pad.photo(uuid.uuid4()) is None
    assert set(pad.records("target")) == {
        str(world.targets["shop1"].id),
        str(world.targets["site1"].id),
    }


def test_the_client_sends_pushes_compressed(live_server, tmp_path):
    """A batch goes gzip-compressed (mobile data); a sign-in, too small to gain, goes as it is."""
    url, world, seen = live_server
    pad = SyncClient(url, str(tmp_path / "gzip.sqlite3"), "pad-gzip")
    seen.clear()
    pad.login("officer1", PASSWORD)
    for _ in range(40):
        pad.save("inspection", uuid.uuid4(), new_inspection(world, ["officer1"]))
    queued = sum(len(body.encode()) for (body,) in pad.db.execute("SELECT body FROM outbox"))
    results = pad.push()
    assert [r["status"] for r in results] == ["applied"] * 40
    (sign_in,) = [s for s in seen if s[0].endswith("/auth/token")]
    (push,) = [s for s in seen if s[0].endswith("/sync/push")]
    assert sign_in[1] == "" and push[1] == "gzip"
    assert push[2] * 4 < queued


# -- over real HTTP, in front of a server that restarts -------------------------------------------


@contextmanager
def scripted_server(answers: list[bytes]):
    """An HTTP server on a loopback port answering each request with the next of ``answers``
    (raw bytes written on the socket, then the connection closed), then with an empty pull
    page; yields its API base URL and the request lines it saw."""
    seen: list[str] = []
    queue = list(answers)
    empty_page = json_answer(200, b'{"changes": [], "cursor": "c", "has_more": false}')

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            seen.append(self.requestline)
            self.wfile.write(queue.pop(0) if queue else empty_page)
            self.wfile.flush()
            self.close_connection = True

        do_GET = do_POST = do_PUT = do_PATCH = do_HEAD = _answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/v1", seen
    finally:
        server.shutdown()
        server.server_close()


def json_answer(status: int, body: bytes, *headers: str) -> bytes:
    head = [
        f"HTTP/1.1 {status} X",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *headers,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def http_pad(url: str, tmp_path) -> SyncClient:
    """A pad over real HTTP, signed in (with a token the scripted server takes as it comes)."""
    pad = SyncClient(url, str(tmp_path / "scripted.sqlite3"), "pad-http", sleep=lambda s: None)
    with pad.db:
        pad._set_meta("token", "t0ken")
    return pad


def test_a_proxy_s_html_503_while_the_server_restarts_is_retried(tmp_path):
    """A load balancer or reverse proxy in front of a restarting server answers 503 with an
    HTML page. The pad waits and tries again, as for the server's own 503, and the pull goes
    through once the server is back: no JSON error escapes to the app, which handles only
    TransportError and SyncError."""
    html_503 = (
        b"HTTP/1.1 503 Service Temporarily Unavailable\r\nContent-Type: text/html\r\n"
        b"Retry-After: 1\r\nContent-Length: 62\r\nConnection: close\r\n\r\n"
        b"<html><body><h1>503 Service Temporarily Unavailable</h1></body"
    )
    with scripted_server([html_503]) as (url, seen):
        assert http_pad(url, tmp_path).pull() == 0
    assert len(seen) == 2  # the 503, then the retry that got through


@pytest.mark.parametrize(
    "answer",
    [
        # The server restarts (or a 4G link drops) while it sends a pull page: the answer
        # stops short of its Content-Length.
        json_answer(200, b'{"changes": [], "cursor": "c", "has_more": false}')[:-20],
        # The answer says JSON, and what came is not whole JSON.
        json_answer(200, b'{"changes": [], "curs'),
    ],
    ids=["cut-off", "not-whole-json"],
)
def test_an_answer_cut_off_by_a_server_restart_is_tried_again(tmp_path, answer):
    """An answer that does not come back whole is what TransportError means ("the request may
    or may not have reached the server; its answer did not come back"): the pad sends the
    request again, and the pull goes through."""
    with scripted_server([answer]) as (url, seen):
        assert http_pad(url, tmp_path).pull() == 0
    assert len(seen) == 2


PORTAL_PAGE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
    b"Content-Length: 43\r\nConnection: close\r\n\r\n"
    b"<html><body>portal login page</body></html>"
)


def test_a_wifi_login_page_is_waited_out_not_taken_for_the_server(tmp_path):
    """A shop's or a metro station's Wi-Fi answers every request with its login page: 200,
    text/html. That is not the server's answer: the pad tries again, and once the officer has
    signed in to the Wi-Fi the pull goes through."""
    with scripted_server([PORTAL_PAGE, PORTAL_PAGE]) as (url, seen):
        assert http_pad(url, tmp_path).pull() == 0
    assert len(seen) == 3


@pytest.mark.parametrize("step", ["pull", "push"])
def test_a_wifi_login_page_that_stays_is_a_transport_error(tmp_path, step):
    """Until the officer signs in to the Wi-Fi, the app gets the TransportError it waits out
    (not an AttributeError out of the client), and the change stays queued."""
    with scripted_server([PORTAL_PAGE] * 6) as (url, _seen):
        pad = http_pad(url, tmp_path)
        pad.save("target", uuid.uuid4(), {"name": "王记面馆"})
        with pytest.raises(TransportError):
            getattr(pad, step)()
        assert pad.pending() == 1


def test_an_answer_cut_off_every_time_is_a_transport_error(tmp_path):
    """When no answer ever comes back whole, the app gets the TransportError it waits out
    (tests/sync_helpers.until_through), not requests' own exception."""
    cut = json_answer(200, b'{"changes": [], "cursor": "c", "has_more": false}')[:-20]
    with scripted_server([cut] * 6) as (url, seen), pytest.raises(TransportError):
        http_pad(url, tmp_path).pull()
    assert len(seen) == 6
