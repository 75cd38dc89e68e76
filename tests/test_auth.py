"""Signing in, tokens bound to devices, sign-out, revocation, expiry and the 429 lock-out."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from fieldapp.audit.models import AuditEntry
from fieldapp.auth import operations as auth_ops
from fieldapp.auth.models import Device, LoginFailure, Token
from fieldapp.db import db, utcnow
from tests.conftest import (
    PASSWORD,
    assert_error,
    audit_entries,
    committed_world,
    etag_of,
    migrated_app,
)


def sign_in(client, username="officer1", password=PASSWORD, device_id="dev-a", **extra):
    return client.post(
        "/api/v1/auth/token",
        json={"username": username, "password": password, "device_id": device_id, **extra},
    )


def test_sign_in_returns_token_and_user(client, world):
    response = sign_in(client, device_name="Huawei MatePad")
    assert response.status_code == 201
    body = response.get_json()
    assert body["token"] and body["expires_at"]
    assert body["user"]["username"] == "officer1"
    assert body["user"]["role"] == "officer"
    assert body["user"]["squadron_id"] == world.squadrons[0].id


def test_me_shows_user_and_device(client, world):
    token = sign_in(client, device_id="pad-17").get_json()["token"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.get_json()["username"] == "officer1"
    assert me.get_json()["device_id"] == "pad-17"


def test_wrong_password_is_401(client, world):
    assert_error(sign_in(client, password="nope"), 401, "unauthenticated")


def test_unknown_user_is_401_like_a_wrong_password(client, world):
    body = assert_error(sign_in(client, username="ghost"), 401, "unauthenticated")
    assert body["message"] == "wrong username or password"


def test_tokens_are_stored_hashed(app, client, world):
    token = sign_in(client).get_json()["token"]
    with app.app_context():
        stored = db.session.scalars(sa.select(Token.token_hash)).all()
    assert stored and token not in stored


def test_missing_or_bad_token_is_401(client, world):
    assert_error(client.get("/api/v1/me"), 401, "unauthenticated")
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-token"})
    assert_error(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_sixth_attempt_within_window_is_429_even_with_right_password(client, world):
    for _ in range(5):
        assert_error(sign_in(client, password="wrong"), 401, "unauthenticated")
    response = sign_in(client)
    assert_error(response, 429, "rate_limited")
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60
    # Another account is not affected.
    assert sign_in(client, username="officer2").status_code == 201


def test_retry_after_waits_for_the_failure_that_ends_the_lock_out(app, client, world):
    """Seven failures in the window (five is the limit): the account is free again only when
    three of them have left it, so Retry-After counts to the third oldest (12 minutes ago: 3
    minutes left), not to the oldest (1 minute left: the client would be refused again)."""
    with app.app_context():
        now = utcnow()
        ages = (14, 13, 12, 11, 10, 9, 1)
        db.session.add_all(
            LoginFailure(username="officer1", at=now - timedelta(minutes=m)) for m in ages
        )
        db.session.commit()
    response = sign_in(client)
    assert_error(response, 429, "rate_limited")
    assert 120 < int(response.headers["Retry-After"]) <= 180


def test_failures_older_than_the_window_do_not_count(app, client, world):
    with app.app_context():
        old = utcnow() - timedelta(minutes=16)
        db.session.add_all(LoginFailure(username="officer1", at=old) for _ in range(5))
        db.session.commit()
    assert sign_in(client).status_code == 201


def test_sign_out_revokes_only_that_token(client, world):
    first = sign_in(client, device_id="pad-1").get_json()["token"]
    second = sign_in(client, device_id="pad-2").get_json()["token"]
    response = client.delete("/api/v1/auth/token", headers={"Authorization": f"Bearer {first}"})
    assert response.status_code == 204
    assert_error(
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {first}"}),
        401,
        "unauthenticated",
    )
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {second}"}).status_code == 200
    )


def test_expired_token_is_401(app, client, world):
    token = sign_in(client).get_json()["token"]
    with app.app_context():
        db.session.execute(sa.update(Token).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert_error(
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}),
        401,
        "unauthenticated",
    )


def test_admin_revokes_a_device(client, login, world):
    lost = sign_in(client, device_id="lost-pad").get_json()["token"]
    other = sign_in(client, username="officer2", device_id="other-pad").get_json()["token"]
    admin = login("admin")
    response = admin.post("/api/v1/devices/lost-pad/revoke")
    assert response.status_code == 200
    assert response.get_json()["revoked"] is True
    assert response.get_json()["revoked_tokens"] == 1
    assert_error(
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {lost}"}),
        401,
        "unauthenticated",
    )
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {other}"}).status_code == 200
    # The revoked device cannot sign in again, whoever tries, until reinstated.
    assert_error(sign_in(client, device_id="lost-pad"), 403, "forbidden")
    assert admin.post("/api/v1/devices/lost-pad/reinstate").status_code == 200
    assert sign_in(client, device_id="lost-pad").status_code == 201


def test_a_sign_in_refused_on_a_revoked_device_is_audited(app, client, login, world):
    """A pad is lost and revoked; someone then signs in on it with officer1's right password.
    The 403 wrote nothing, so the supervisor investigating the stolen pad could not see that
    it was used, when, or with which account. Now it is an `auth.login_failed` entry under the
    account, `reason: revoked_device`; it does not count towards the lock-out (the password
    was right)."""
    assert sign_in(client, device_id="lost-pad").status_code == 201
    assert login("admin").post("/api/v1/devices/lost-pad/revoke").status_code == 200
    attempt = sign_in(client, device_id="lost-pad")
    assert_error(attempt, 403, "forbidden")
    [entry] = audit_entries(app, action="auth.login_failed")
    officer = world.users["officer1"]
    assert (entry.actor_id, entry.device_id, entry.record_id) == (
        officer.id,
        "lost-pad",
        str(officer.id),
    )
    assert entry.after == {
        "username": "officer1",
        "device_id": "lost-pad",
        "remote_addr": "127.0.0.1",
        "reason": "revoked_device",
    }
    assert entry.request_id == attempt.headers["X-Request-ID"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginFailure)) == 0


def test_the_device_list_shows_when_a_device_was_last_seen(app, login, world):
    """officer1's pad signed in two days ago and has synced since. `last_seen_at` moved only
    when a token was issued (a token lives a week), so the admin deciding whether a
    reported-lost pad is still in use read a wrong date. Now any authenticated request moves
    it, at most once every few minutes (a second request soon after writes nothing)."""
    officer = login("officer1", "pad-0042")
    with app.app_context():
        device = db.session.get(Device, "pad-0042")
        device.last_seen_at = utcnow() - timedelta(days=2)
        db.session.commit()
    started = utcnow()
    assert officer.get("/api/v1/sync/pull").status_code == 200
    admin = login("admin")

    def last_seen() -> str:
        listed = admin.get("/api/v1/devices").get_json()["items"]
        return {d["id"]: d for d in listed}["pad-0042"]["last_seen_at"]

    seen = last_seen()
    assert started <= datetime.fromisoformat(seen) <= utcnow()
    assert officer.get("/api/v1/me").status_code == 200
    assert last_seen() == seen  # within LAST_SEEN_EVERY: not written again
    with app.app_context():
        device = db.session.get(Device, "pad-0042")
        device.last_seen_at -= auth_ops.LAST_SEEN_EVERY
        db.session.commit()
    assert officer.get("/api/v1/me").status_code == 200
    assert last_seen() > seen


def test_only_admins_revoke_devices(client, login, world):
    sign_in(client, device_id="pad-x")
    leader = login("leader1")
    # A device the leader never used is not in their list, and not theirs to revoke (403, as
    # API.md has out-of-scope writes); an unknown one is 404.
    listed = [d["id"] for d in leader.get("/api/v1/devices").get_json()["items"]]
    assert "pad-x" not in listed
    assert_error(leader.post("/api/v1/devices/pad-x/revoke"), 403, "forbidden")
    assert_error(leader.post("/api/v1/devices/never-seen/revoke"), 404, "not_found")
    assert_error(leader.post(f"/api/v1/devices/{leader.device_id}/revoke"), 403, "forbidden")


def test_revoking_unknown_device_is_404(login, world):
    assert_error(login("admin").post("/api/v1/devices/never-seen/revoke"), 404, "not_found")


# -- sign-out, revoke and reinstate take no body; one sent anyway is read as any body is ---------

#: (method, path, who calls it) of each endpoint without a body; pad-x is officer1's device.
BODILESS = {
    "sign_out": ("DELETE", "/api/v1/auth/token", "officer1"),
    "revoke": ("POST", "/api/v1/devices/pad-x/revoke", "admin"),
    "reinstate": ("POST", "/api/v1/devices/pad-x/reinstate", "admin"),
}


def _call_bodiless(client, login, name, **body):
    """Sign officer1 in on pad-x (revoked first for ``reinstate``), then call endpoint ``name``
    with ``body`` (``data=``/``json=``/``content_type=``). Answers the response and pad-x's
    state afterwards: whether officer1's token still works, and whether pad-x may sign in."""
    token = sign_in(client, device_id="pad-x").get_json()["token"]
    if name == "reinstate":
        assert login("admin").post("/api/v1/devices/pad-x/revoke").status_code == 200
    method, path, caller = BODILESS[name]
    bearer = token if caller == "officer1" else login(caller).token
    response = client.open(
        path, method=method, headers={"Authorization": f"Bearer {bearer}"}, **body
    )
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code
    return response, (me, sign_in(client, device_id="pad-x").status_code)


#: pad-x's state when the call changed nothing: officer1 still signed in (or, before
#: ``reinstate``, the device revoked: no token works, no sign-in).
UNCHANGED = {"sign_out": (200, 201), "revoke": (200, 201), "reinstate": (401, 403)}
#: ... and when the call did what it is for.
DONE = {"sign_out": (401, 201), "revoke": (401, 403), "reinstate": (401, 201)}


@pytest.mark.parametrize("name", BODILESS)
@pytest.mark.parametrize(
    "body",
    [{}, {"json": {}}, {"data": "", "content_type": "application/json"}],
    ids=["no-body", "empty-object", "empty-json-body"],
)
def test_endpoints_without_a_body_take_none_or_an_empty_object(client, login, world, name, body):
    response, after = _call_bodiless(client, login, name, **body)
    assert response.status_code in (200, 204), response.get_json()
    assert after == DONE[name]


@pytest.mark.parametrize("name", BODILESS)
@pytest.mark.parametrize(
    "body, status, error",
    [
        ({"json": {"zzz": 1}}, 422, "validation_failed"),
        ({"data": "not json", "content_type": "application/json"}, 400, "malformed_json"),
        ({"json": []}, 422, "validation_failed"),
        ({"data": "zzz=1", "content_type": "text/plain"}, 415, "unsupported_media_type"),
    ],
    ids=["unknown-field", "malformed-json", "not-an-object", "form"],
)
def test_a_body_sent_to_an_endpoint_without_one_is_refused_and_changes_nothing(
    client, login, world, name, body, status, error
):
    """API.md: unknown JSON fields are rejected (422), never silently dropped; a device that
    sends one (or garbled JSON) is told, and its sign-out or revocation did not happen."""
    response, after = _call_bodiless(client, login, name, **body)
    answer = assert_error(response, status, error)
    if body.get("json"):
        assert answer["errors"]["json"] == {"zzz": ["Unknown field."]}
    assert after == UNCHANGED[name]


def test_sign_in_bad_input(client, world):
    assert_error(client.post("/api/v1/auth/token", json={}), 422, "validation_failed")
    body = assert_error(
        client.post(
            "/api/v1/auth/token", json={"username": "a", "password": "b", "device_id": "bad id!"}
        ),
        422,
        "validation_failed",
    )
    assert "device_id" in body["errors"]["json"]
    body = assert_error(sign_in(client, role="admin"), 422, "validation_failed")
    assert body["errors"]["json"]["role"] == ["Unknown field."]
    assert_error(
        client.post("/api/v1/auth/token", data="{", content_type="application/json"),
        400,
        "malformed_json",
    )
    assert_error(
        client.post("/api/v1/auth/token", data="username=x", content_type="text/plain"),
        415,
        "unsupported_media_type",
    )
    body = assert_error(
        client.post("/api/v1/auth/token", json={"username": 5, "password": [], "device_id": "d"}),
        422,
        "validation_failed",
    )
    assert set(body["errors"]["json"]) == {"username", "password"}


def test_every_sign_in_and_revocation_is_audited(app, client, login, world):
    from fieldapp.audit.models import AuditEntry

    sign_in(client, device_id="pad-9")
    login("admin").post("/api/v1/devices/pad-9/revoke")
    with app.app_context():
        actions = db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.seq)).all()
    assert actions.count("auth.login") >= 2
    assert "device.revoke" in actions


def test_a_rename_a_sign_out_and_a_reinstatement_say_what_changed_in_the_log(
    app, client, login, world
):
    """The device list's name of a pad changed at sign-in, a sign-out and an admin letting a
    recovered pad sign in again each have an entry that says what changed and from what.
    Before, a rename left no entry, and the others had neither ``before`` nor ``after``."""
    sign_in(client, device_id="pad-5", device_name="执法仪 5 号")
    sign_in(client, device_id="pad-5", device_name="执法仪 5 号")  # the same name: no change
    token = sign_in(client, device_id="pad-5", device_name="三中队 5 号").get_json()["token"]
    [renamed] = audit_entries(app, action="device.rename")
    assert (renamed.record_id, renamed.actor_id) == ("pad-5", world.users["officer1"].id)
    assert (renamed.before, renamed.after) == ({"name": "执法仪 5 号"}, {"name": "三中队 5 号"})

    client.delete("/api/v1/auth/token", headers={"Authorization": f"Bearer {token}"})
    [signed_out] = audit_entries(app, action="auth.logout")
    assert signed_out.before == {"revoked_at": None}
    assert signed_out.after["revoked_at"] is not None

    admin = login("admin")
    assert admin.post("/api/v1/devices/pad-5/revoke").status_code == 200
    [revoked] = audit_entries(app, action="device.revoke")
    assert admin.post("/api/v1/devices/pad-5/reinstate").status_code == 200
    [reinstated] = audit_entries(app, action="device.reinstate")
    assert reinstated.before == {
        "revoked_at": reinstated.before["revoked_at"],
        "revoked_by_id": str(world.users["admin"].id),
    }
    revoked_at = datetime.fromisoformat(reinstated.before["revoked_at"])
    assert abs(revoked_at - revoked.at) < timedelta(seconds=5)  # when the admin revoked it
    assert reinstated.after == {"revoked_at": None, "revoked_by_id": None}


def test_a_failed_sign_in_is_counted_and_audited_together(app, client, world):
    """The attempt is kept despite the 401 (it counts towards the lock-out), and so is its
    audit entry, in the same transaction: the account's history shows the guessing, with the
    device tried and never the password."""
    response = sign_in(client, password="guess-0042", device_id="pad-32")
    assert_error(response, 401, "unauthenticated")
    officer = world.users["officer1"]
    [entry] = audit_entries(app, action="auth.login_failed")
    assert (entry.actor_id, entry.device_id, entry.entity, entry.record_id) == (
        officer.id,
        "pad-32",
        "user",
        str(officer.id),
    )
    assert entry.after == {
        "username": "officer1",
        "device_id": "pad-32",
        "remote_addr": "127.0.0.1",
        "reason": "password",
    }
    assert entry.request_id == response.headers["X-Request-ID"]
    with app.app_context():
        failures = db.session.scalar(sa.text("SELECT count(*) FROM login_failures"))
        stored = db.session.scalars(sa.select(AuditEntry.after)).all()
    assert failures == 1
    assert "guess-0042" not in json.dumps(stored)


def test_failed_sign_ins_say_why_to_the_audit_log(app, client, login, world):
    """An unknown username names no account; a disabled account is told from a wrong password.
    The answer to the device is the same 401 for all three."""
    admin = login("admin")
    officer2 = f"/api/v1/users/{world.users['officer2'].id}"
    disabled = admin.patch(
        officer2, json={"active": False}, headers={"If-Match": etag_of(admin, officer2)}
    )
    assert disabled.status_code == 200, disabled.get_json()
    for username, password in (("ghost", PASSWORD), ("officer2", PASSWORD)):
        assert_error(sign_in(client, username=username, password=password), 401, "unauthenticated")
    ghost, inactive = audit_entries(app, action="auth.login_failed")
    assert (ghost.actor_id, ghost.record_id, ghost.after["reason"]) == (None, None, "unknown_user")
    assert ghost.after["username"] == "ghost"
    assert (inactive.actor_id, inactive.after["reason"]) == (world.users["officer2"].id, "disabled")


def test_a_locked_out_attempt_writes_nothing(app, client, world):
    """The 429 is answered before the password is checked: no failure row, no audit entry."""
    for _ in range(5):
        assert_error(sign_in(client, password="wrong"), 401, "unauthenticated")
    assert_error(sign_in(client, password="wrong"), 429, "rate_limited")
    assert len(audit_entries(app, action="auth.login_failed")) == 5
    with app.app_context():
        assert db.session.scalar(sa.text("SELECT count(*) FROM login_failures")) == 5


def test_the_sign_in_is_logged_with_the_user_and_device_it_signs_in(client, world, caplog):
    """The request that matters most for security is logged with who signed in and on which
    device; a failed one with the device only (what was typed as a username may be a
    password typed in the wrong field)."""
    with caplog.at_level(logging.INFO, logger="fieldapp.request"):
        signed_in = sign_in(client, device_id="pad-31")
        refused = sign_in(client, password="wrong", device_id="pad-33")
    assert signed_in.status_code == 201 and refused.status_code == 401
    lines = [r for r in caplog.records if "/api/v1/auth/token" in r.getMessage()]
    assert [(r.user, r.device) for r in lines] == [("officer1", "pad-31"), ("-", "pad-33")]
    assert "POST /api/v1/auth/token 201" in lines[0].getMessage()


def test_a_failed_sign_in_on_a_shared_pad_is_not_logged_as_the_last_user(
    client, login, world, caplog
):
    """Pads are shared between shifts, and a client may still send the last user's token with
    the next sign-in: the token is not read, so a failed attempt names the device only, not
    the officer who signed in there before and typed nothing; a successful one names whoever
    it signed in."""
    officer1 = login("officer1", "pad-shared")

    def officer2_signs_in(password: str):
        return client.post(
            "/api/v1/auth/token",
            json={"username": "officer2", "password": password, "device_id": "pad-shared"},
            headers={"Authorization": f"Bearer {officer1.token}"},
        )

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fieldapp.request"):
        refused = officer2_signs_in("wrong")
        signed_in = officer2_signs_in(PASSWORD)
    assert refused.status_code == 401 and signed_in.status_code == 201
    lines = [r for r in caplog.records if "POST /api/v1/auth/token" in r.getMessage()]
    assert [(r.user, r.device) for r in lines] == [("-", "pad-shared"), ("officer2", "pad-shared")]


def test_every_request_is_logged_with_its_id_user_and_device(login, world, caplog):
    """After the request's commit the log still names who and which device (read up front)."""
    api = login("officer1")
    with caplog.at_level(logging.INFO, logger="fieldapp.request"):
        response = api.get("/api/v1/targets", headers={"X-Request-ID": "pad-7f3a:42"})
        anonymous = api.client.get("/api/v1/targets")
    assert response.status_code == 200 and anonymous.status_code == 401
    signed, unsigned = [r for r in caplog.records if r.name == "fieldapp.request"][-2:]
    assert (signed.request_id, signed.user, signed.device) == (
        "pad-7f3a:42",
        "officer1",
        api.device_id,
    )
    assert "GET /api/v1/targets 200" in signed.getMessage()
    assert (unsigned.user, unsigned.device) == ("-", "-")
    assert len(unsigned.request_id) == 32  # one of the server's own


def test_a_request_path_cannot_forge_a_log_line(client, world, caplog):
    """Every request is one log line. Flask decodes the path, so a caller's %0A would end the
    line and start one of its choosing (here one that reads as an admin's request); line
    breaks, spaces and control characters are logged encoded again, other text as it is."""
    forged = (
        "2026-12-05 13:00:00,000 INFO fieldapp.request [req=abc user=admin device=desk]"
        " DELETE /api/v1/audit 200 1.0ms"
    )
    with caplog.at_level(logging.INFO, logger="fieldapp.request"):
        forging = client.get("/api/v1/nope%0A" + forged.replace(" ", "%20"))
        readable = client.get("/api/v1/nope/吴淞?q=%E5%90%B4")
    assert forging.status_code == 404 and readable.status_code == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "fieldapp.request"]
    assert len(lines) == 2 and not any("\n" in line for line in lines)
    assert lines[0].startswith("GET /api/v1/nope%0A2026-12-05%2013:00:00,000%20INFO")
    assert lines[1].startswith("GET /api/v1/nope/吴淞?q=%E5%90%B4 404")


# -- the lock-out under concurrency (real commits, separate connections) -----------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def committed_app(request, tmp_path_factory):
    """``(app, world)`` on a database of its own with the world committed, so that parallel
    requests run in transactions of their own as in production (SQLite: a file; PostgreSQL:
    the module's scratch database)."""
    if request.param == "postgresql":
        yield request.getfixturevalue("pg_app")
        return
    instance = tmp_path_factory.mktemp("sign-in-race")
    yield from committed_world(migrated_app(f"sqlite:///{instance / 'race.sqlite3'}", instance))


def test_parallel_wrong_passwords_cannot_exceed_the_limit(committed_app, monkeypatch):
    """API.md: more than 5 failures for one username within 15 minutes → 429. Ten wrong
    passwords sent at once (each password check held until all ten are being checked, as a slow
    argon2 lets them overlap) get at most five checks; the others are refused unchecked, and the
    account stays locked, also for the right password."""
    app, _world = committed_app
    arrived = threading.Barrier(10, timeout=5)
    check = auth_ops._password_matches

    def slow_check(*args, **kwargs):
        # The attempts overlap, as they do when argon2 takes its time; attempts that are
        # serialised arrive one by one and break the barrier: let them through.
        with contextlib.suppress(threading.BrokenBarrierError):
            arrived.wait()
        return check(*args, **kwargs)

    monkeypatch.setattr(auth_ops, "_password_matches", slow_check)
    answers: list[int] = []

    def attempt(i: int) -> None:
        response = app.test_client().post(
            "/api/v1/auth/token",
            json={"username": "officer2", "password": f"guess-{i}", "device_id": f"race-{i}"},
        )
        answers.append(response.status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers) == [401] * 5 + [429] * 5
    response = app.test_client().post(
        "/api/v1/auth/token",
        json={"username": "officer2", "password": PASSWORD, "device_id": "race-ok"},
    )
    assert response.status_code == 429
