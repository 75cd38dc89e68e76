"""User administration: admins add, change and disable accounts; others see their colleagues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fieldapp.auth.models import Role
from tests.conftest import (
    NO_SUCH_ID,
    PASSWORD,
    SYSTEM,
    assert_error,
    audit_entries,
    etag_of,
    other_district,
)

SQUADRON_1 = {"leader1", "officer1", "officer2"}
EVERYONE = {"admin", "supervisor", "leader1", "officer1", "officer2", "leader2", "officer3"}


def usernames(response) -> set[str]:
    assert response.status_code == 200, response.get_json()
    return {u["username"] for u in response.get_json()["items"]}


def new_user(world, **overrides) -> dict:
    return {
        "username": "officer9",
        "name": "李娜",
        "role": "officer",
        "password": "long-enough-pass",
        "squadron_id": world.squadrons[0].id,
        **overrides,
    }


def sign_in(client, username, password, device_id="pad-new"):
    return client.post(
        "/api/v1/auth/token",
        json={"username": username, "password": password, "device_id": device_id},
    )


# -- listing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "username, expected",
    [
        ("officer1", SQUADRON_1),
        ("leader1", SQUADRON_1),
        ("officer3", {"leader2", "officer3"}),
        ("supervisor", EVERYONE),
        ("admin", EVERYONE),
    ],
)
def test_users_list_is_scoped(login, world, username, expected):
    assert usernames(login(username).get("/api/v1/users")) == expected


def test_users_list_filters_by_role_and_squadron(login, world):
    admin = login("admin")
    assert usernames(admin.get("/api/v1/users?role=leader")) == {"leader1", "leader2"}
    second = world.squadrons[1].id
    assert usernames(admin.get(f"/api/v1/users?squadron_id={second}")) == {"leader2", "officer3"}
    # A filter never widens an officer's view.
    assert usernames(login("officer1").get(f"/api/v1/users?squadron_id={second}")) == set()


def test_user_wire_shape_has_no_secrets(login, world):
    body = login("officer1").get(f"/api/v1/users/{world.users['officer2'].id}").get_json()
    assert body["username"] == "officer2"
    assert body["role"] == "officer"
    assert body["squadron_id"] == world.squadrons[0].id
    assert body["active"] is True
    assert not {"password", "password_hash"} & set(body)


def test_users_list_pages(login, world):
    admin = login("admin")
    first = admin.get("/api/v1/users?per_page=4").get_json()
    second = admin.get("/api/v1/users?per_page=4&page=2").get_json()
    assert (len(first["items"]), first["has_more"]) == (4, True)
    assert (len(second["items"]), second["has_more"]) == (3, False)
    assert {u["username"] for u in first["items"] + second["items"]} == EVERYONE


# -- creating ---------------------------------------------------------------------------------


def test_admin_adds_an_officer_who_can_then_sign_in(app, client, login, world):
    response = login("admin").post("/api/v1/users", json=new_user(world))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["username"], body["role"], body["squadron_id"]) == (
        "officer9",
        "officer",
        world.squadrons[0].id,
    )
    assert body["district_id"] == world.district.id
    assert body["active"] is True and body["version"] == 1
    assert "password" not in body
    assert sign_in(client, "officer9", "long-enough-pass").status_code == 201
    assert "officer9" in usernames(login("officer2").get("/api/v1/users"))

    entries = audit_entries(app, entity="user", record_id=body["id"])
    assert [e.action for e in entries] == ["user.create"]
    assert "password_hash" not in entries[0].after
    assert "long-enough-pass" not in str(entries[0].after)


def test_admin_adds_a_supervisor_without_a_squadron(login, world):
    response = login("admin").post(
        "/api/v1/users",
        json=new_user(world, username="inspector2", role="supervisor", squadron_id=None),
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["squadron_id"] is None
    assert response.get_json()["district_id"] == world.district.id


@pytest.mark.parametrize("taken", ["officer1", "admin"])
def test_a_taken_username_is_refused(login, world, taken):
    body = assert_error(
        login("admin").post("/api/v1/users", json=new_user(world, username=taken)),
        422,
        "validation_failed",
    )
    assert list(body["errors"]["json"]) == ["username"]


@pytest.mark.parametrize("role", ["officer", "leader"])
def test_officers_and_leaders_need_a_squadron(login, world, role):
    admin = login("admin")
    for payload in (
        new_user(world, role=role, squadron_id=None),
        {k: v for k, v in new_user(world, role=role).items() if k != "squadron_id"},
    ):
        body = assert_error(admin.post("/api/v1/users", json=payload), 422, "validation_failed")
        assert list(body["errors"]["json"]) == ["squadron_id"]
    assert "officer9" not in usernames(admin.get("/api/v1/users"))


@pytest.mark.parametrize(
    "password",
    [
        "short",
        "1234567",
        "12345678",
        "password",
        "Password1",
        "aaaaaaaaaaaa",
        "abababababab",
        "officer9",
        "OFFICER9",
        "x" * 257,
    ],
)
def test_weak_passwords_are_refused(login, world, password):
    body = assert_error(
        login("admin").post("/api/v1/users", json=new_user(world, password=password)),
        422,
        "validation_failed",
    )
    assert list(body["errors"]["json"]) == ["password"]


def test_unknown_squadron_or_district_is_refused(login, world):
    admin = login("admin")
    body = assert_error(
        admin.post("/api/v1/users", json=new_user(world, squadron_id=NO_SUCH_ID)),
        422,
        "validation_failed",
    )
    assert list(body["errors"]["json"]) == ["squadron_id"]
    body = assert_error(
        admin.post(
            "/api/v1/users",
            json=new_user(world, role="supervisor", squadron_id=None, district_id=NO_SUCH_ID),
        ),
        422,
        "validation_failed",
    )
    assert list(body["errors"]["json"]) == ["district_id"]


@pytest.mark.parametrize("which", ["unknown", "another"])
def test_a_user_named_with_a_squadron_and_another_district_is_refused(app, login, world, which):
    """An admin adds an officer to 吴淞中队 and names a district that is not the squadron's (one
    that does not exist, or another one). It used to be 201, the user silently in the
    squadron's district and the admin's district_id dropped; now it is a 422 on
    `district_id`, and the squadron's own district is accepted."""
    district_id = NO_SUCH_ID if which == "unknown" else other_district(app)[0]
    admin = login("admin")
    body = assert_error(
        admin.post("/api/v1/users", json=new_user(world, district_id=district_id)),
        422,
        "validation_failed",
    )
    assert list(body["errors"]["json"]) == ["district_id"]
    assert "officer9" not in usernames(admin.get("/api/v1/users"))
    fitting = admin.post("/api/v1/users", json=new_user(world, district_id=world.district.id))
    assert fitting.status_code == 201, fitting.get_json()


def test_a_blank_user_name_is_refused(login, world):
    """A display name of spaces was accepted, and every roster, task list and inspection
    record then showed the officer as nothing. It is refused (422 on `name`) when adding and
    when renaming; the spaces around a name are not kept."""
    admin = login("admin")
    for name in ("   ", "", "\u3000\t"):
        body = assert_error(
            admin.post("/api/v1/users", json=new_user(world, name=name)), 422, "validation_failed"
        )
        assert body["errors"]["json"] == {"name": ["may not be blank"]}
    path = f"/api/v1/users/{world.users['officer2'].id}"
    etag = etag_of(admin, path)
    body = assert_error(
        admin.patch(path, json={"name": "  "}, headers={"If-Match": etag}), 422, "validation_failed"
    )
    assert body["errors"]["json"] == {"name": ["may not be blank"]}
    added = admin.post("/api/v1/users", json=new_user(world, name=" 李娜 "))
    assert added.get_json()["name"] == "李娜"


def test_supervisors_and_admins_belong_to_no_squadron(login, world):
    """A supervisor or admin with a squadron passed for one of its members in its roster:
    adding one with a squadron, or giving one a squadron, is refused (422 on `squadron_id`)."""
    admin = login("admin")
    for role in ("supervisor", "admin"):
        body = assert_error(
            admin.post("/api/v1/users", json=new_user(world, role=role)), 422, "validation_failed"
        )
        assert body["errors"]["json"] == {"squadron_id": [f"a {role} belongs to no squadron"]}
    for username, changes in (
        ("supervisor", {"squadron_id": world.squadrons[0].id}),
        ("officer1", {"role": "supervisor", "squadron_id": world.squadrons[0].id}),
    ):
        path = f"/api/v1/users/{world.users[username].id}"
        etag = etag_of(admin, path)
        body = assert_error(
            admin.patch(path, json=changes, headers={"If-Match": etag}), 422, "validation_failed"
        )
        assert list(body["errors"]["json"]) == ["squadron_id"]
        assert admin.get(path).headers["ETag"] == etag


# -- changing ---------------------------------------------------------------------------------


def test_edit_needs_if_match(login, world):
    admin = login("admin")
    path = f"/api/v1/users/{world.users['officer2'].id}"
    first = etag_of(admin, path)
    assert_error(admin.patch(path, json={"name": "王强"}), 428, "precondition_required")
    assert_error(
        admin.patch(path, json={"name": "王强"}, headers={"If-Match": '"stale"'}),
        412,
        "precondition_failed",
    )
    response = admin.patch(path, json={"name": "王强"}, headers={"If-Match": first})
    assert response.status_code == 200
    assert (response.get_json()["name"], response.get_json()["version"]) == ("王强", 2)
    assert response.headers["ETag"] != first
    assert_error(
        admin.patch(path, json={"name": "王刚"}, headers={"If-Match": first}),
        412,
        "precondition_failed",
    )


def test_disabling_a_user_stops_their_tokens_and_sign_in(app, client, login, world):
    officer = login("officer2")
    assert officer.get("/api/v1/me").status_code == 200
    admin = login("admin")
    path = f"/api/v1/users/{world.users['officer2'].id}"
    response = admin.patch(path, json={"active": False}, headers={"If-Match": etag_of(admin, path)})
    assert response.status_code == 200
    assert response.get_json()["active"] is False

    assert_error(officer.get("/api/v1/me"), 401, "unauthenticated")
    assert_error(officer.get("/api/v1/targets"), 401, "unauthenticated")
    assert_error(sign_in(client, "officer2", PASSWORD), 401, "unauthenticated")
    # Others are not affected.
    assert login("officer1").get("/api/v1/me").status_code == 200

    # Enabled again, they sign in afresh; the old token stays dead.
    admin.patch(path, json={"active": True}, headers={"If-Match": etag_of(admin, path)})
    assert sign_in(client, "officer2", PASSWORD).status_code == 201
    assert_error(officer.get("/api/v1/me"), 401, "unauthenticated")

    actions = [e.action for e in audit_entries(app, entity="user", action="user.update")]
    assert actions == ["user.update", "user.update"]


def test_a_new_password_signs_the_user_out_everywhere(client, login, world):
    officer = login("officer1")
    admin = login("admin")
    path = f"/api/v1/users/{world.users['officer1'].id}"
    response = admin.patch(
        path, json={"password": "a-new-long-pass"}, headers={"If-Match": etag_of(admin, path)}
    )
    assert response.status_code == 200
    assert_error(officer.get("/api/v1/me"), 401, "unauthenticated")
    assert_error(sign_in(client, "officer1", PASSWORD), 401, "unauthenticated")
    assert sign_in(client, "officer1", "a-new-long-pass").status_code == 201


def test_moving_an_officer_changes_what_they_see(login, world):
    admin = login("admin")
    path = f"/api/v1/users/{world.users['officer1'].id}"
    response = admin.patch(
        path,
        json={"squadron_id": world.squadrons[1].id},
        headers={"If-Match": etag_of(admin, path)},
    )
    assert response.status_code == 200
    targets = login("officer1").get("/api/v1/targets").get_json()["items"]
    assert {t["name"] for t in targets} == {"鑫隆五金店"}


def test_a_promoted_officer_leaves_the_squadrons_roster(app, login, world):
    """officer1 is made a supervisor (district-wide). The account kept squadron 1, so the
    squadron's officers still had them in their roster as a colleague. Now the promotion
    takes them out of the squadron, in the same audited change, and the squadron's roster
    (`GET /users`, and pull: see tests/test_sync_pull.py) no longer lists them."""
    admin = login("admin")
    path = f"/api/v1/users/{world.users['officer1'].id}"
    response = admin.patch(
        path, json={"role": "supervisor"}, headers={"If-Match": etag_of(admin, path)}
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["role"], body["squadron_id"], body["district_id"]) == (
        "supervisor",
        None,
        world.district.id,
    )
    assert usernames(login("officer2").get("/api/v1/users")) == {"leader1", "officer2"}
    [entry] = audit_entries(app, action="user.update", record_id=str(world.users["officer1"].id))
    assert entry.before == {"role": "officer", "squadron_id": world.squadrons[0].id}
    assert entry.after == {"role": "supervisor", "squadron_id": None}


def test_an_admin_moves_a_supervisor_to_another_district(app, login, world):
    """A supervisor (督察) is transferred to another district. `district_id` was an unknown
    field, and a supervisor has no squadron to move them by: they kept auditing the old
    district. The admin now sends `district_id` (audited); a district that does not exist, or
    one that is not a squadron member's squadron's, is refused (422 on `district_id`)."""
    district_id, squadron_id = other_district(app)
    admin = login("admin")
    path = f"/api/v1/users/{world.users['supervisor'].id}"
    for wrong in (NO_SUCH_ID,):
        body = assert_error(
            admin.patch(
                path, json={"district_id": wrong}, headers={"If-Match": etag_of(admin, path)}
            ),
            422,
            "validation_failed",
        )
        assert list(body["errors"]["json"]) == ["district_id"]
    officer = f"/api/v1/users/{world.users['officer1'].id}"
    body = assert_error(
        admin.patch(
            officer,
            json={"district_id": district_id},
            headers={"If-Match": etag_of(admin, officer)},
        ),
        422,
        "validation_failed",
    )
    assert list(body["errors"]["json"]) == ["district_id"]

    response = admin.patch(
        path, json={"district_id": district_id}, headers={"If-Match": etag_of(admin, path)}
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["district_id"] == district_id
    [entry] = audit_entries(app, action="user.update", record_id=str(world.users["supervisor"].id))
    assert (entry.before, entry.after) == (
        {"district_id": world.district.id},
        {"district_id": district_id},
    )
    # They read the new district now, not the old one.
    supervisor = login("supervisor")
    assert usernames(supervisor.get("/api/v1/users")) == {"supervisor"}
    squadrons = supervisor.get("/api/v1/squadrons").get_json()["items"]
    assert [s["id"] for s in squadrons] == [squadron_id]
    # An officer moves with their squadron; naming its district as well is no contradiction.
    moved = admin.patch(
        officer,
        json={"squadron_id": squadron_id, "district_id": district_id},
        headers={"If-Match": etag_of(admin, officer)},
    )
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["district_id"] == district_id


def open_task(leader, world, *assignees: str) -> dict:
    """leader1 sends ``assignees`` to shop1; the task as answered."""
    response = leader.post(
        "/api/v1/tasks",
        json={
            "target_id": str(world.targets["shop1"].id),
            "assignee_ids": [str(world.users[name].id) for name in assignees],
            "due": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
            "origin": "manual",
            "note": "复查跨门经营",
        },
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("change", [{"active": False}, {"role": "leader"}])
def test_an_officer_who_leaves_does_not_orphan_their_open_tasks(app, login, world, change):
    """leader1 sent officer2 alone to a shop, and officer2 with officer1 to it too; then the
    admin disables officer2 (left the force), or makes them a leader. The lone task stayed
    `open`, assigned to someone who would never come, and the schedule's dispatch (a task for
    each due target with no open task) never sent anyone there again. Now the task nobody
    active can carry out is cancelled in the same change, with its reason and its audit
    entry, and the leader sees it; the shared one stays open with officer1."""
    leader = login("leader1")
    alone = open_task(leader, world, "officer2")
    shared = open_task(leader, world, "officer1", "officer2")
    admin = login("admin")
    path = f"/api/v1/users/{world.users['officer2'].id}"
    response = admin.patch(path, json=change, headers={"If-Match": etag_of(admin, path)})
    assert response.status_code == 200, response.get_json()

    after = leader.get(f"/api/v1/tasks/{alone['id']}").get_json()
    assert after["status"] == "cancelled"
    why = "账号已停用" if change.get("active") is False else "已不再是执法队员"
    assert after["cancel_reason"] == f"执行人officer2{why}，任务无其他在岗执行人"
    assert leader.get(f"/api/v1/tasks/{shared['id']}").get_json()["status"] == "open"
    [cancel] = audit_entries(app, action="task.cancel")
    assert (cancel.record_id, cancel.actor_id) == (alone["id"], world.users["admin"].id)
    [update] = audit_entries(app, action="user.update")
    assert update.seq < cancel.seq
    assert cancel.request_id == update.request_id  # one request, one transaction


@pytest.mark.parametrize(
    "username, changes, field",
    [
        ("officer1", {"squadron_id": None}, "squadron_id"),
        ("admin", {"role": "officer"}, "squadron_id"),
        ("officer1", {"squadron_id": NO_SUCH_ID}, "squadron_id"),
        ("officer1", {"password": "12345678"}, "password"),
        ("officer1", {"username": "renamed"}, "username"),
    ],
)
def test_invalid_edits_are_refused_and_change_nothing(login, world, username, changes, field):
    admin = login("admin")
    path = f"/api/v1/users/{world.users[username].id}"
    etag = etag_of(admin, path)
    body = assert_error(
        admin.patch(path, json=changes, headers={"If-Match": etag}), 422, "validation_failed"
    )
    assert list(body["errors"]["json"]) == [field]
    after = admin.get(path)
    assert after.headers["ETag"] == etag
    assert after.get_json()["version"] == 1


# -- only admins ------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["officer1", "leader1", "supervisor"])
def test_only_admins_add_users(login, world, username):
    api = login(username)
    assert_error(api.post("/api/v1/users", json=new_user(world)), 403, "forbidden")
    assert "officer9" not in usernames(login("admin").get("/api/v1/users"))


@pytest.mark.parametrize("username", ["officer1", "leader1", "supervisor"])
def test_only_admins_change_users(client, login, world, username):
    api = login(username)
    path = f"/api/v1/users/{world.users['officer2'].id}"
    assert_error(
        api.patch(path, json={"active": False}, headers={"If-Match": etag_of(api, path)}),
        403,
        "forbidden",
    )
    assert sign_in(client, "officer2", PASSWORD).status_code == 201


def test_a_leader_neither_sees_nor_changes_another_squadrons_users(login, world):
    leader1 = login("leader1")
    path = f"/api/v1/users/{world.users['officer3'].id}"
    assert_error(leader1.get(path), 404, "not_found")
    assert_error(
        leader1.patch(path, json={"active": False}, headers={"If-Match": '"x"'}), 403, "forbidden"
    )
    missing = "/api/v1/users/00000000-0000-4000-8000-000000000000"
    assert_error(
        leader1.patch(missing, json={"active": False}, headers={"If-Match": '"x"'}),
        404,
        "not_found",
    )


def test_the_last_admin_cannot_be_disabled_or_demoted(login, world):
    admin = login("admin")
    path = f"/api/v1/users/{world.users['admin'].id}"
    for changes in ({"active": False}, {"role": "supervisor"}):
        body = assert_error(
            admin.patch(path, json=changes, headers={"If-Match": etag_of(admin, path)}),
            422,
            "validation_failed",
        )
        assert "last active admin" in body["errors"]["json"]["role"][0]
    assert admin.get("/api/v1/me").status_code == 200


def test_cli_refuses_a_weak_password_too(app, ctx, world):
    from fieldapp.auth import operations
    from fieldapp.errors import APIError

    with pytest.raises(APIError) as caught:
        operations.create_user(
            SYSTEM,
            app.extensions["fieldapp.auth"],
            username="weakling",
            name="弱",
            role=Role.supervisor,
            password="password123",
            district_id=world.district.id,
        )
    assert caught.value.code == 422
