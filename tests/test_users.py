"""User administration: admins add, change and disable accounts; others see their colleagues."""

from __future__ import annotations

import pytest

from fieldapp.auth.models import Role
from tests.conftest import NO_SUCH_ID, PASSWORD, SYSTEM, assert_error, audit_entries, etag_of

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
