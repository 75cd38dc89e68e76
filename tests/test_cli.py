"""The ``fieldapp`` command as a newcomer runs it: demo, serving, users, imports, bad config
(and the configuration itself: start-up checks, the generated secret key)."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from fieldapp import config as fieldapp_config
from fieldapp import create_app
from fieldapp.config import ConfigError, load_config

FIELDAPP = str(Path(sys.executable).with_name("fieldapp"))
README = Path(__file__).parent.parent / "README.md"


def run(args, instance: Path, **env) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "FIELDAPP_INSTANCE_PATH": str(instance),
        "FIELDAPP_PASSWORD_TIME_COST": "1",
        "FIELDAPP_PASSWORD_MEMORY_KIB": "64",
        **env,
    }
    environment.pop("FIELDAPP_DATABASE_URL", None) if "FIELDAPP_DATABASE_URL" not in env else None
    return subprocess.run(
        [FIELDAPP, *args], env=environment, capture_output=True, text=True, timeout=300
    )


def count(instance: Path, table: str) -> int:
    engine = sa.create_engine(f"sqlite:///{instance / 'fieldapp.sqlite3'}")
    with engine.connect() as conn:
        value = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    engine.dispose()
    return value


@pytest.fixture(scope="module")
def demo_built(tmp_path_factory) -> Path:
    """An instance folder with the small demo district, built once for this module."""
    instance = tmp_path_factory.mktemp("demo")
    result = run(["demo", "--scale", "small", "--no-serve"], instance)
    assert result.returncode == 0, result.stderr
    return instance


@pytest.fixture
def demo(demo_built, tmp_path) -> Path:
    """A copy of the small demo district of its own for the test."""
    instance = tmp_path / "instance"
    shutil.copytree(demo_built, instance)
    return instance


def names_of_targets(instance: Path) -> set[str]:
    engine = sa.create_engine(f"sqlite:///{instance / 'fieldapp.sqlite3'}")
    with engine.connect() as conn:
        names = set(conn.execute(sa.text("SELECT name FROM targets")).scalars())
    engine.dispose()
    return names


def refused(result: subprocess.CompletedProcess) -> str:
    """The command failed with a message of its own, not a Python traceback; its stderr."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    return result.stderr


def test_demo_builds_once_and_is_reused(tmp_path):
    first = run(["demo", "--scale", "small", "--no-serve"], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "built in" in first.stdout
    targets = count(tmp_path, "targets")
    assert targets == 180 + 24

    again = run(["demo", "--scale", "small", "--no-serve"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert "reusing the demo district" in again.stdout
    assert count(tmp_path, "targets") == targets


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_serves_sign_in_for_demo_accounts(tmp_path):
    assert run(["demo", "--scale", "small", "--no-serve"], tmp_path).returncode == 0
    port = _free_port()
    env = {**os.environ, "FIELDAPP_INSTANCE_PATH": str(tmp_path)}
    server = subprocess.Popen(
        [FIELDAPP, "demo", "--port", str(port), "--scale", "small"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        body = json.dumps(
            {"username": "officer3", "password": "fieldapp-demo", "device_id": "pad-t"}
        ).encode()
        while True:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/v1/auth/token",
                    data=body,
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=5) as response:
                    assert response.status == 201
                    answer = json.load(response)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        assert answer["user"]["username"] == "officer3"
        assert answer["user"]["squadron_id"] == 2
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_db_upgrade_builds_a_fresh_database(tmp_path):
    result = run(["db", "upgrade"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert count(tmp_path, "sync_change_counter") == 1


def production_commands() -> list[list[str]]:
    """The ``fieldapp`` commands of README's "Production" section, in order, as arguments."""
    section = README.read_text(encoding="utf-8").split("## Production", 1)[1].split("\n## ")[0]
    commands = []
    for line in section.splitlines():
        if line.startswith(".venv/bin/fieldapp "):
            commands.append(shlex.split(line.split("#", 1)[0])[1:])
    return commands


def test_a_fresh_installation_gets_its_admin_squadrons_and_users_as_the_readme_says(tmp_path):
    """An operator follows README's "Production" steps on an empty database: the district,
    then its first admin (who used to be refused: "--district: name the district", with no
    way to make one), the admin's squadron over the API, its leader, officer and supervisor.
    Every step works; a district code already taken, or a blank name, is refused."""
    steps = [step for step in production_commands() if step[:2] != ["targets", "import"]]
    assert steps[:3] == [
        ["db", "upgrade"],
        ["district", "add", "310113", "--name", "宝山区"],
        ["user", "add", "admin", "--name", "管理员", "--role", "admin"],
    ], steps
    squadron_made = False
    for step in steps:
        if "--squadron" in step and not squadron_made:
            app = create_app(
                {
                    "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'fieldapp.sqlite3'}",
                    "TESTING": True,
                    "SECRET_KEY": secrets.token_urlsafe(32),
                }
            )
            client = app.test_client()
            token = client.post(
                "/api/v1/auth/token",
                json={"username": "admin", "password": "Guo-an-2026x", "device_id": "desk"},
            ).get_json()["token"]
            auth = {"Authorization": f"Bearer {token}"}
            [district] = client.get("/api/v1/districts", headers=auth).get_json()["items"]
            assert district["code"] == "310113"
            squadron = client.post(
                "/api/v1/squadrons",
                headers=auth,
                json={
                    "name": "吴淞中队",
                    "district_id": district["id"],
                    "jurisdiction": {
                        "type": "Polygon",
                        "coordinates": [
                            [[121.47, 31.36], [121.52, 31.36], [121.52, 31.41], [121.47, 31.36]]
                        ],
                    },
                },
            )
            assert squadron.status_code == 201, squadron.get_json()
            squadron_made = True
        password = ["--password", "Guo-an-2026x"] if step[:2] == ["user", "add"] else []
        result = run([*step, *password], tmp_path)
        assert result.returncode == 0, (step, result.stderr)
    assert squadron_made
    assert count(tmp_path, "users") == 4
    assert count(tmp_path, "audit_entries") >= 6  # the district, the users, the squadron
    taken = refused(run(["district", "add", "310113", "--name", "宝山区"], tmp_path))
    assert taken.strip() == "Error: CODE: a district already has this code"
    blank = refused(run(["district", "add", "310114", "--name", "  "], tmp_path))
    assert blank.strip() == "Error: --name: may not be blank"
    assert count(tmp_path, "districts") == 1


def test_user_add(tmp_path):
    assert run(["demo", "--scale", "small", "--no-serve"], tmp_path).returncode == 0
    result = run(
        [
            "user",
            "add",
            "zhangwei",
            "--name",
            "张伟",
            "--role",
            "officer",
            "--squadron",
            "吴淞",
            "--password",
            "s3cret-pass",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "added zhangwei (officer)" in result.stdout
    taken = run(
        [
            "user",
            "add",
            "zhangwei",
            "--name",
            "张伟",
            "--role",
            "officer",
            "--squadron",
            "1",
            "--password",
            "s3cret-pass",
        ],
        tmp_path,
    )
    assert taken.returncode != 0
    assert "already taken" in taken.stderr
    no_squadron = run(
        [
            "user",
            "add",
            "lisi",
            "--name",
            "李四",
            "--role",
            "officer",
            "--squadron",
            "火星",
            "--password",
            "s3cret-pass",
        ],
        tmp_path,
    )
    assert no_squadron.returncode != 0
    assert "no squadron" in no_squadron.stderr


def _add_officer(app, username: str, *options: str):
    """``fieldapp user add USERNAME`` (an officer) in the test's own app and transaction."""
    import fieldapp.cli  # noqa: F401  (fieldapp.auth.commands imports it)
    from fieldapp.auth.commands import user_cli

    given = ["--name", "张伟", "--role", "officer", "--password", "s3cret-pass", *options]
    return app.test_cli_runner().invoke(user_cli, ["add", username, *given])


def _roster(api, squadron_id: int) -> list[str]:
    users = api.get(f"/api/v1/users?squadron_id={squadron_id}").get_json()["items"]
    return sorted(u["username"] for u in users)


def test_user_add_takes_the_squadron_named_exactly(app, login, world):
    """A district with 吴淞中队 and a new station named 吴淞: `--squadron 吴淞` was refused
    as "'吴淞' is in several districts; name the district", with the district named too (both
    are in one district). The exact name wins; a name without 中队 still finds the squadron
    called so where there is no exact one."""
    from tests.conftest import square

    admin = login("admin")
    station = admin.post(
        "/api/v1/squadrons",
        json={
            "name": "吴淞",
            "district_id": world.district.id,
            "jurisdiction": square(121.6, 31.5),
        },
    ).get_json()
    named = _add_officer(app, "zhangwei", "--squadron", "吴淞", "--district", "310113")
    assert named.exit_code == 0, named.output
    alone = _add_officer(app, "liqiang", "--squadron", "吴淞")
    assert alone.exit_code == 0, alone.output
    assert _roster(admin, station["id"]) == ["liqiang", "zhangwei"]
    suffixed = _add_officer(app, "wangfang", "--squadron", "张庙")
    assert suffixed.exit_code == 0, suffixed.output
    assert "wangfang" in _roster(admin, world.squadrons[1].id)


def test_user_add_asks_for_the_district_only_when_the_name_is_in_several(app, login, world):
    from tests.conftest import other_district, square

    district, _ = other_district(app)
    admin = login("admin")
    minhang = admin.post(
        "/api/v1/squadrons",
        json={"name": "张庙中队", "district_id": district, "jurisdiction": square(121.3, 31.2)},
    ).get_json()
    refused = _add_officer(app, "zhangwei", "--squadron", "张庙")
    assert refused.exit_code != 0
    assert (
        "--squadron: '张庙' is in several districts (310113 宝山区, 310112 闵行区);"
        " name the district (--district CODE)"
    ) in refused.output
    named = _add_officer(app, "zhangwei", "--squadron", "张庙", "--district", "310112")
    assert named.exit_code == 0, named.output
    assert _roster(admin, minhang["id"]) == ["zhangwei"]


def user_add(instance: Path, username="zhangwei", **options) -> subprocess.CompletedProcess:
    """``fieldapp user add`` with a valid officer's options, ``options`` changed."""
    given = {"name": "张伟", "role": "officer", "squadron": "吴淞", "password": "s3cret-pass"}
    args = [f"--{option}={value}" for option, value in {**given, **options}.items()]
    return run(["user", "add", username, *args], instance)


@pytest.mark.parametrize(
    "username, options, message",
    [
        # "²".isdigit() is true, but it is no squadron id
        ("zhangwei", {"squadron": "²"}, "--squadron: no squadron '²'"),
        (
            "zhangwei",
            {"squadron": "99999999999999999999"},
            "--squadron: Must be greater than or equal to 1 and less than or equal to 2147483647.",
        ),
        # what POST /api/v1/users refuses, the command refuses with the same words
        ("zhangwei", {"password": "abc12"}, "--password: Length must be between 8 and 256."),
        ("Bad User", {}, "USERNAME: 2-64 characters: a-z, 0-9, _ . -"),
        ("zhangwei", {"name": ""}, "--name: may not be blank"),
        ("zhangwei", {"name": "   "}, "--name: may not be blank"),
        ("zhangwei", {"password": "zhangwei"}, "--password: may not be the username"),
        ("li", {"role": "leader", "squadron": ""}, "--squadron: a leader belongs to a squadron"),
    ],
    ids=[
        "odd-digit",
        "huge-id",
        "short-password",
        "bad-username",
        "empty-name",
        "blank-name",
        "weak",
        "role",
    ],
)
def test_user_add_refuses_what_the_api_refuses_in_one_line(demo, username, options, message):
    before = count(demo, "users")
    stderr = refused(user_add(demo, username, **options))
    assert stderr.strip() == f"Error: {message}"
    assert count(demo, "users") == before


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("FIELDAPP_DATABASE_URL", "mysql://root@localhost/x", "not supported"),
        ("FIELDAPP_DATABASE_URL", "::not a url::", "not a database URL"),
        ("FIELDAPP_SECRET_KEY", "short", "at least 16 characters"),
        ("FIELDAPP_TOKEN_TTL_HOURS", "a week", "whole number"),
        ("FIELDAPP_STORAGE_DIR", "/proc/fieldapp-photos", "FIELDAPP_STORAGE_DIR"),
        (
            "FIELDAPP_DATABASE_URL",
            "sqlite:////nonexistent-fieldapp-dir/x.sqlite3",
            "the folder /nonexistent-fieldapp-dir does not exist",
        ),
        ("FIELDAPP_DATABASE_URL", "sqlite:////etc/hostname/x.sqlite3", "is not a folder"),
        ("FIELDAPP_DATABASE_URL", "sqlite:////tmp", "/tmp is a folder, not a database file"),
        (
            "FIELDAPP_DATABASE_URL",
            "postgresql://fieldapp@127.0.0.1:abc/fieldapp",
            "is not a database URL: invalid literal for int()",
        ),
        (
            "FIELDAPP_DATABASE_URL",
            "postgresql+psycopg2://fieldapp@127.0.0.1/fieldapp",
            "the driver 'psycopg2' is not supported",
        ),
        (
            "FIELDAPP_DATABASE_URL",
            "postgresql+asyncpg://fieldapp@127.0.0.1/fieldapp",
            "the driver 'asyncpg' is not supported",
        ),
        ("FIELDAPP_DATABASE_URL", "sqlite://", "an in-memory database is empty"),
        ("FIELDAPP_DATABASE_URL", "sqlite:///:memory:", "an in-memory database is empty"),
        ("FIELDAPP_SECRET_KEY", " " * 32, "FIELDAPP_SECRET_KEY is blank"),
        ("FIELDAPP_SECRET_KEY", "a" * 16, "too easy to guess: 1 different characters"),
        ("FIELDAPP_LOG_LEVEL", "verbose", "is not a log level; use one of DEBUG, INFO"),
        ("FIELDAPP_TOKEN_TTL_HOURS", "100000000000", "must be at most 876,000 (100 years)"),
    ],
)
def test_configuration_errors_stop_start_up_with_a_clear_message(
    tmp_path, variable, value, message
):
    result = run(["db", "upgrade"], tmp_path, **{variable: value})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    [line] = result.stderr.splitlines()
    assert line.startswith(f"fieldapp: configuration error: {variable}")
    assert message in line


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FIELDAPP_TOKEN_TTL_HOURS", "100000000"),
        ("FIELDAPP_LOGIN_FAILURE_WINDOW_MINUTES", "9000000000"),
        ("FIELDAPP_PHOTO_UNCLAIMED_HOURS", "100000000"),
        ("FIELDAPP_CHECK_SUBMISSION_HOURS", "100000000"),
        ("FIELDAPP_CHECK_PHOTO_TIME_MARGIN_MINUTES", "9000000000"),
        ("FIELDAPP_TRACK_GAP_MINUTES", "9000000000"),
        ("FIELDAPP_TRACK_MAX_DAYS", "5000000"),
    ],
)
def test_a_duration_no_date_can_hold_stops_start_up_naming_it(tmp_path, variable, value):
    """A token lifetime or lock-out window past the calendar's end would pass start-up and
    then answer 500 to every sign-in (OverflowError); it is refused at start-up instead, by
    the variable's name. A hundred years is the longest any duration setting may be."""
    with pytest.raises(ConfigError) as refused_value:
        load_config({variable: value}, instance_path=str(tmp_path))
    assert str(refused_value.value) == f"{variable}={value!r} must be at most " + (
        {"HOURS": "876,000", "MINUTES": "52,560,000", "DAYS": "36,500"}[variable.split("_")[-1]]
        + " (100 years)"
    )
    longest = {"FIELDAPP_TOKEN_TTL_HOURS": "876000", "FIELDAPP_TRACK_MAX_DAYS": "36500"}
    if variable in longest:
        load_config({variable: longest[variable]}, instance_path=str(tmp_path))


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg2://fieldapp:s3cret@127.0.0.1/fieldapp",
        "mysql://fieldapp:s3cret@127.0.0.1/fieldapp",
        "postgresql://fieldapp:s3cret@127.0.0.1:port/fieldapp",
        "postgresql://fieldapp:s3c@ret@127.0.0.1:port/fieldapp",
    ],
)
def test_a_refused_database_url_is_named_without_its_password(tmp_path, url):
    """The start-up line ends up in gunicorn's and systemd's logs: the URL is named as the
    operator wrote it, its password hidden, whether it parses or not."""
    with pytest.raises(ConfigError) as refused_url:
        load_config({"FIELDAPP_DATABASE_URL": url}, instance_path=str(tmp_path))
    message = str(refused_url.value)
    assert message.startswith("FIELDAPP_DATABASE_URL='")
    assert "s3c" not in message and "ret@" not in message, message
    assert "fieldapp:***@127.0.0.1" in message


def test_help_and_the_command_list_stay_readable_while_the_configuration_is_broken(tmp_path):
    """The operator reads them while fixing the configuration; only a command that needs the
    app says what is wrong with it."""
    broken = {"FIELDAPP_DATABASE_URL": "mysql://root@localhost/fieldapp"}
    top = run(["--help"], tmp_path, **broken)
    assert top.returncode == 0 and top.stderr == ""
    for command in ("db", "demo", "targets", "user", "audit", "risk", "photos", "run"):
        assert f"  {command} " in top.stdout
    sub = run(["db", "--help"], tmp_path, **broken)
    assert sub.returncode == 0 and "upgrade" in sub.stdout
    stderr = refused(run(["db", "upgrade"], tmp_path, **broken))
    assert stderr.startswith("fieldapp: configuration error: FIELDAPP_DATABASE_URL=")


def test_an_instance_folder_nobody_can_write_is_named_as_the_operator_set_it(tmp_path):
    """/proc/self: a folder even root cannot write into. With everything defaulted, the photo
    store and database are in it: the message names FIELDAPP_INSTANCE_PATH, not the
    FIELDAPP_STORAGE_DIR or FIELDAPP_DATABASE_URL the operator never set."""
    stderr = refused(run(["db", "upgrade"], Path("/proc/self")))
    [line] = stderr.splitlines()
    assert line.startswith("fieldapp: configuration error: FIELDAPP_INSTANCE_PATH='/proc/self': ")
    assert "FIELDAPP_STORAGE_DIR" not in line and "FIELDAPP_DATABASE_URL" not in line


def test_an_instance_folder_that_cannot_keep_the_secret_key_is_a_configuration_error(tmp_path):
    """The database and photo store are elsewhere: only the generated secret key needs the
    instance folder, and it cannot be written there."""
    result = run(
        ["db", "upgrade"],
        Path("/proc/self"),
        FIELDAPP_STORAGE_DIR=str(tmp_path / "photos"),
        FIELDAPP_DATABASE_URL=f"sqlite:///{tmp_path / 'fieldapp.sqlite3'}",
    )
    assert result.returncode == 2
    [line] = refused(result).splitlines()
    assert line.startswith("fieldapp: configuration error: FIELDAPP_INSTANCE_PATH='/proc/self': ")
    assert "cannot keep a generated secret key there" in line
    assert "set FIELDAPP_SECRET_KEY" in line
    # The secret given, the same folder is no obstacle.
    given = run(
        ["db", "upgrade"],
        Path("/proc/self"),
        FIELDAPP_STORAGE_DIR=str(tmp_path / "photos"),
        FIELDAPP_DATABASE_URL=f"sqlite:///{tmp_path / 'fieldapp.sqlite3'}",
        FIELDAPP_SECRET_KEY=secrets.token_urlsafe(48),
    )
    assert given.returncode == 0, given.stderr


def test_workers_starting_together_keep_one_generated_secret_key(tmp_path, monkeypatch):
    """gunicorn starts its workers together, and each loads the configuration. Two that both
    find no key file (the second starts while the first is making its key, and finishes first)
    must end up with the same key, or a token issued by one is refused (401) by the other."""
    make_key = fieldapp_config.secrets.token_urlsafe
    second_worker = {}

    def first_worker_interrupted(nbytes):
        if not second_worker:
            second_worker["key"] = "starting"
            second_worker["key"] = load_config({}, instance_path=str(tmp_path))["SECRET_KEY"]
        return make_key(nbytes)

    monkeypatch.setattr(fieldapp_config.secrets, "token_urlsafe", first_worker_interrupted)
    first_worker = load_config({}, instance_path=str(tmp_path))["SECRET_KEY"]
    assert first_worker == second_worker["key"]
    assert (tmp_path / "secret_key").read_text().strip() == first_worker
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0  # the owner's alone
    assert [p.name for p in tmp_path.iterdir() if "secret" in p.name] == ["secret_key"]
    monkeypatch.undo()
    assert load_config({}, instance_path=str(tmp_path))["SECRET_KEY"] == first_worker


@pytest.mark.parametrize("content", ["", "\n", "short\n", "ab" * 20], ids=repr)
def test_a_damaged_secret_key_file_stops_start_up_and_says_how_to_recover(tmp_path, content):
    """An empty or truncated key file would key every token hash with "" (or a guessable
    key). It is not replaced behind the operator's back: another worker could be replacing it
    too, and the devices signed in would all be signed out."""
    (tmp_path / "secret_key").write_text(content)
    with pytest.raises(ConfigError) as refused_key:
        load_config({}, instance_path=str(tmp_path))
    message = str(refused_key.value)
    assert f"the secret key kept in {tmp_path / 'secret_key'}" in message
    assert "remove the file to have a new one generated" in message
    assert (tmp_path / "secret_key").read_text() == content
    # The operator's way out: the variable, which is then the key.
    key = secrets.token_urlsafe(48)
    config = load_config({"FIELDAPP_SECRET_KEY": f" {key}\n"}, instance_path=str(tmp_path))
    assert config["SECRET_KEY"] == key


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_a_database_folder_that_is_not_writable_is_a_configuration_error(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    result = run(["db", "upgrade"], tmp_path, FIELDAPP_DATABASE_URL=f"sqlite:///{folder}/x.db")
    assert result.returncode == 2
    assert f"FIELDAPP_DATABASE_URL='sqlite:///{folder}/x.db'" in result.stderr
    assert f"the folder {folder} is not writable" in result.stderr


def test_the_server_does_not_start_on_an_unusable_database_url(tmp_path):
    """Rather than start and answer 500 to every request."""
    environment = {
        **os.environ,
        "FIELDAPP_INSTANCE_PATH": str(tmp_path),
        "FIELDAPP_DATABASE_URL": "sqlite:////nonexistent-fieldapp-dir/x.sqlite3",
    }
    result = subprocess.run(
        [FIELDAPP, "run", "--port", str(_free_port())],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("fieldapp: configuration error: FIELDAPP_DATABASE_URL=")


def test_a_database_that_cannot_be_reached_is_named_in_one_line(tmp_path):
    url = f"postgresql://fieldapp:s3cret@127.0.0.1:{_free_port()}/fieldapp"
    result = run(["db", "upgrade"], tmp_path, FIELDAPP_DATABASE_URL=url)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "s3cret" not in result.stderr
    [line] = result.stderr.splitlines()
    shown = url.replace("postgresql:", "postgresql+psycopg:").replace("s3cret", "***")
    assert line.startswith(f"fieldapp: database error: {shown}: connection failed")
    assert "Connection refused" in line


def test_commands_before_db_upgrade_say_to_run_it(tmp_path):
    result = user_add(tmp_path, role="admin", squadron="")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"fieldapp: database error: sqlite:///{tmp_path / 'fieldapp.sqlite3'}: "
        "no such table: districts (run `fieldapp db upgrade` first)"
    )


CSV_GOOD = """kind,name,address,squadron,lon,lat,business_type,uscc,scale,phase,permit_no
shop,阿英生煎,宝山区淞滨路12号,吴淞,121.49,31.40,catering,91310113MA1H2B3C4R,,,
site,淞兴路道路改建工程,宝山区淞兴路,1,121.48,31.39,,,medium,earthwork,3101132025000101
"""

CSV_BAD = """kind,name,address,squadron,lon,lat,business_type,uscc
shop,好邻居便利店,宝山区同济路1号,吴淞,121.49,31.40,retail,123
shop,,宝山区同济路2号,吴淞,121.49,31.40,retail,
shop,小杨水果,宝山区同济路3号,火星,999,31.40,fresh_produce,
"""


def test_targets_import_csv_all_or_nothing(tmp_path):
    assert run(["demo", "--scale", "small", "--no-serve"], tmp_path).returncode == 0
    before = count(tmp_path, "targets")
    bad = tmp_path / "bad.csv"
    bad.write_text(CSV_BAD, encoding="utf-8")
    result = run(["targets", "import", str(bad)], tmp_path)
    assert result.returncode != 0
    for expected in ("line 2: uscc", "line 3: name", "line 4: squadron", "line 4: location"):
        assert expected in result.stderr
    assert count(tmp_path, "targets") == before

    good = tmp_path / "good.csv"
    good.write_text(CSV_GOOD, encoding="utf-8")
    dry = run(["targets", "import", "--dry-run", str(good)], tmp_path)
    assert "2 new" in dry.stdout and count(tmp_path, "targets") == before
    result = run(["targets", "import", str(good)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "imported 2 new" in result.stdout
    assert count(tmp_path, "targets") == before + 2


def test_targets_import_geojson(tmp_path):
    assert run(["demo", "--scale", "small", "--no-serve"], tmp_path).returncode == 0
    before = count(tmp_path, "targets")
    ring = [
        [121.480, 31.390],
        [121.482, 31.390],
        [121.482, 31.392],
        [121.480, 31.392],
        [121.480, 31.390],
    ]
    document = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [121.49, 31.40]},
                "properties": {
                    "kind": "shop",
                    "name": "金鼎五金",
                    "squadron": "吴淞中队",
                    "business_type": "hardware",
                },
            },
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {
                    "kind": "site",
                    "name": "同济路商铺装修工程",
                    "squadron": 1,
                    "scale": "micro",
                    "phase": "finishing",
                },
            },
        ],
    }
    path = tmp_path / "targets.geojson"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    result = run(["targets", "import", str(path)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert count(tmp_path, "targets") == before + 2

    bowtie = [[121.48, 31.39], [121.49, 31.40], [121.49, 31.39], [121.48, 31.40], [121.48, 31.39]]
    document["features"][1]["geometry"]["coordinates"] = [bowtie]
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    result = run(["targets", "import", str(path)], tmp_path)
    assert result.returncode != 0
    assert "feature 1: boundary" in result.stderr
    assert count(tmp_path, "targets") == before + 2


CSV_SHOP = """kind,name,address,squadron,lon,lat,business_type
shop,阿英生煎,宝山区淞滨路12号,吴淞,121.49,31.40,catering
"""


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_targets_import_reads_utf8_and_excels_chinese_csv(demo, encoding):
    """Excel on a Chinese Windows saves "CSV" in GBK; "CSV UTF-8" with a BOM."""
    path = demo / "shops.csv"
    path.write_bytes(CSV_SHOP.encode(encoding))
    result = run(["targets", "import", str(path)], demo)
    assert result.returncode == 0, result.stderr
    assert "imported 1 new" in result.stdout
    assert ("read as GBK" in result.stdout) == (encoding == "gbk")
    # Nothing knows the shop again (no code, no uscc): the operator is told.
    assert result.stderr == (
        "note: 1 of the new targets have no code, uscc (shop) or permit_no (site):"
        " importing this file again would add them again\n"
    )
    assert "阿英生煎" in names_of_targets(demo)


CSV_BAD_ROWS = (
    "kind,name,address,squadron,lon,lat,business_type\n"
    # an unquoted comma in the address: one field more than the header
    "shop,阿英生煎,宝山区淞滨路12号,近泰和路,吴淞,121.49,31.40,catering\n"
    # PostgreSQL cannot store a NUL character in text
    "shop,老王\0面馆,宝山区淞滨路14号,吴淞,121.49,31.40,catering\n"
    "shop,小杨水果,宝山区淞滨路16号,吴淞,121.49,31.40,fresh_produce\n"
)


def test_targets_import_reads_geojson_saved_with_a_bom(demo):
    """GeoJSON saved as "UTF-8" by Windows tools (Notepad, many GIS exports) starts with a BOM,
    as their CSV does: the file is imported, not refused as "not valid JSON"."""
    document = {"type": "FeatureCollection", "features": [feature(point(121.49, 31.40))]}
    path = demo / "targets.geojson"
    path.write_bytes(json.dumps(document, ensure_ascii=False).encode("utf-8-sig"))
    result = run(["targets", "import", str(path)], demo)
    assert result.returncode == 0, result.stderr
    assert "金鼎五金" in names_of_targets(demo)


def test_targets_import_ignores_the_empty_columns_and_rows_excel_saves(demo):
    """Excel saves every column and row of a sheet's used range: cells right of the data or
    below it that were once touched come as columns with no name (the header ends in ",,")
    and rows of commas only, above the header too. They hold nothing: the shop is imported,
    not refused for "unknown columns " (with no name to look for) or for rows with every
    field missing."""
    path = demo / "shops.csv"
    path.write_text(
        ",,,,,,,,\r\n"  # a title row above the header, cleared since
        "kind,name,address,squadron,lon,lat,business_type,,\r\n"
        "shop,阿英生煎,宝山区淞滨路12号,吴淞,121.49,31.40,catering,,\r\n"
        ",,,,,,,,\r\n,,,,,,,,\r\n",
        encoding="utf-8-sig",
    )
    result = run(["targets", "import", str(path)], demo)
    assert result.returncode == 0, result.stderr
    assert "imported 1 new" in result.stdout
    assert "阿英生煎" in names_of_targets(demo)


def test_targets_import_names_a_value_under_a_column_with_no_name_by_its_position(demo):
    """A value in a column the header does not name cannot be imported as anything: the
    operator is told which column (by position) and which line, and nothing is imported."""
    before = names_of_targets(demo)
    path = demo / "shops.csv"
    path.write_text(
        "kind,name,address,squadron,lon,lat,business_type,\n"
        "shop,阿英生煎,宝山区淞滨路12号,吴淞,121.49,31.40,catering,\n"
        "shop,小杨水果,宝山区淞滨路16号,吴淞,121.49,31.40,fresh_produce,13901234567\n",
        encoding="utf-8",
    )
    stderr = refused(run(["targets", "import", str(path)], demo))
    assert "line 3: column 8 has no name in the header but holds '13901234567'" in stderr
    assert "line 2" not in stderr
    assert names_of_targets(demo) == before


def test_targets_import_takes_a_site_boundary_exported_as_a_multipolygon_of_one_part(demo):
    """GIS tools export polygon layers as MultiPolygon (QGIS does for any layer that came from
    a shapefile): a site whose boundary is one such part is imported with that boundary."""
    ring = [[121.480, 31.390], [121.482, 31.390], [121.482, 31.392], [121.480, 31.392]]
    ring.append(ring[0])
    document = {
        "type": "FeatureCollection",
        "features": [feature({"type": "MultiPolygon", "coordinates": [[ring]]}, SITE_PROPERTIES)],
    }
    path = demo / "sites.geojson"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    result = run(["targets", "import", str(path)], demo)
    assert result.returncode == 0, result.stderr
    assert "同济路商铺装修工程" in names_of_targets(demo)


def test_targets_import_names_each_unreadable_csv_row_and_imports_nothing(demo):
    before = names_of_targets(demo)
    path = demo / "shops.csv"
    path.write_text(CSV_BAD_ROWS, encoding="utf-8")
    stderr = refused(run(["targets", "import", str(path)], demo))
    assert "line 2: 8 fields, but the header has 7" in stderr
    assert "line 3: name: text may not contain the NUL character" in stderr
    assert "line 4" not in stderr
    assert "2 problem(s); nothing was imported" in stderr
    assert names_of_targets(demo) == before


def test_targets_import_of_the_same_file_again_adds_nothing(demo):
    """Shops are known again by their uscc, sites by their permit number; the command says
    what it did with each row."""
    before = count(demo, "targets")
    path = demo / "targets.csv"
    path.write_text(CSV_GOOD, encoding="utf-8")
    first = run(["targets", "import", str(path)], demo)
    assert first.returncode == 0, first.stderr
    assert "imported 2 new, 0 updated and 0 unchanged targets" in first.stdout
    assert first.stderr == ""
    again = run(["targets", "import", str(path)], demo)
    assert again.returncode == 0, again.stderr
    assert "imported 0 new, 0 updated and 2 unchanged targets" in again.stdout
    assert count(demo, "targets") == before + 2


def test_a_big_import_shows_progress_while_it_checks_the_rows(demo):
    """Every row is checked before anything is written, which takes a while for a big file:
    the command says what it is doing from the start, and how far it got, even when a problem
    on the last line then stops it."""
    path = demo / "shops.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write("kind,name,address,squadron,lon,lat,business_type\n")
        for n in range(5000):
            out.write(f"shop,测试商户{n},宝山区淞滨路{n}号,吴淞,121.47,31.37,retail\n")
        out.write("shop,最后一家,宝山区淞滨路9999号,火星,121.47,31.37,retail\n")
    result = run(["targets", "import", str(path)], demo)
    stderr = refused(result)
    assert "  line 5002: squadron: no squadron '火星'" in stderr.splitlines()
    assert stderr.endswith("problem(s); nothing was imported\n")
    assert result.stdout.splitlines() == ["checking shops.csv", "  checked 5,000 / 5,001 rows"]


def test_targets_labels_writes_one_label_per_active_target_of_the_squadron(demo):
    """The admin prints a squadron's 一店一码 stickers: one SVG per active target, named by its
    code, each naming its shop; a squadron that does not exist is named, not a traceback."""
    engine = sa.create_engine(f"sqlite:///{demo / 'fieldapp.sqlite3'}")
    with engine.connect() as conn:
        squadron_id = conn.execute(sa.text("SELECT id FROM squadrons ORDER BY id")).scalar()
        wanted = dict(
            conn.execute(
                sa.text(
                    "SELECT code, name FROM targets WHERE active AND kind = 'shop'"
                    " AND squadron_id = :squadron"
                ),
                {"squadron": squadron_id},
            ).all()
        )
    engine.dispose()
    out = demo / "labels"
    result = run(
        [
            "targets",
            "labels",
            "--out",
            str(out),
            "--squadron-id",
            str(squadron_id),
            "--kind",
            "shop",
        ],
        demo,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {len(wanted):,} labels to {out}\n"
    assert wanted and sorted(p.stem for p in out.iterdir()) == sorted(wanted)
    code, name = sorted(wanted.items())[0]
    label = (out / f"{code}.svg").read_text(encoding="utf-8")
    assert f">{code}</text>" in label and name in label
    assert "no squadron 999" in refused(
        run(["targets", "labels", "--out", str(out), "--squadron-id", "999"], demo)
    )


@pytest.mark.parametrize("squadron_id", ["99999999999999999999", "-9223372036854775809", "0"])
def test_targets_labels_names_a_squadron_id_no_squadron_can_have(demo, squadron_id):
    """A squadron id past what the database's integer holds (or below 1) names no squadron:
    said as for any other id, not a traceback from the database."""
    out = demo / "labels"
    stderr = refused(
        run(["targets", "labels", "--out", str(out), "--squadron-id", squadron_id], demo)
    )
    assert f"no squadron {squadron_id}" in stderr
    assert not out.exists()


def test_targets_import_refuses_a_file_in_no_known_encoding(demo):
    path = demo / "shops.csv"
    path.write_bytes(CSV_SHOP.encode("utf-16"))  # Excel's "Unicode text"
    stderr = refused(run(["targets", "import", str(path)], demo))
    assert "neither UTF-8 nor GBK/GB18030 text" in stderr


SHOP_PROPERTIES = {
    "kind": "shop",
    "name": "金鼎五金",
    "squadron": "吴淞",
    "business_type": "hardware",
}


SITE_PROPERTIES = {
    "kind": "site",
    "name": "同济路商铺装修工程",
    "squadron": 1,
    "scale": "micro",
    "phase": "finishing",
}
SQUARE = [[121.48, 31.39], [121.481, 31.39], [121.481, 31.391], [121.48, 31.39]]


def feature(geometry, properties=SHOP_PROPERTIES) -> dict:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def point(*coordinates) -> dict:
    return {"type": "Point", "coordinates": list(coordinates)}


@pytest.mark.parametrize(
    "features, message",
    [
        ([feature(point(121.4))], "feature 0: geometry: a Point's coordinates are [lon, lat]"),
        (
            [feature(point(121.49, 31.40)), feature(point(121.49, 31.40), "abc")],
            "feature 1: properties must be an object",
        ),
        (5, "file: features must be a list of GeoJSON features"),
        (
            [feature(point(121.49, 31.40), {**SHOP_PROPERTIES, "name": "金鼎\0五金"})],
            "feature 0: name: text may not contain the NUL character",
        ),
        (
            [
                feature(
                    {"type": "MultiPolygon", "coordinates": [[SQUARE], [SQUARE]]}, SITE_PROPERTIES
                )
            ],
            "feature 0: geometry: a site's boundary is one Polygon, not a MultiPolygon of 2 parts",
        ),
        (
            [feature({"type": "LineString", "coordinates": SQUARE[:2]})],
            "feature 0: geometry: a shop's is its Point, a site's its boundary Polygon (or Point),"
            " not 'LineString'",
        ),
    ],
    ids=[
        "point-with-one-coordinate",
        "properties-not-an-object",
        "features-not-a-list",
        "nul",
        "multipolygon-of-two-parts",
        "linestring",
    ],
)
def test_targets_import_names_what_is_wrong_in_a_geojson_file(demo, features, message):
    before = names_of_targets(demo)
    path = demo / "targets.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    assert message in refused(run(["targets", "import", str(path)], demo))
    assert names_of_targets(demo) == before


def test_risk_recompute_reassesses_every_target_and_names_missing_settings(tmp_path):
    assert run(["demo", "--scale", "small", "--no-serve"], tmp_path).returncode == 0
    targets = count(tmp_path, "targets")
    result = run(["risk", "recompute"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{targets:,} targets assessed" in result.stdout
    assert count(tmp_path, "target_risks") == targets
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'fieldapp.sqlite3'}")
    # Stricter thresholds: many targets move up. Each chunk is committed on its own, with the
    # audit entries of its level changes: every change is in the log, the chain intact.
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE risk_settings SET value = :value WHERE key = 'levels'"),
            {"value": json.dumps({"medium": 20, "elevated": 35, "high": 55})},
        )
    changes_before = count(tmp_path, "risk_level_changes")
    stricter = run(["risk", "recompute", "--workers", "1", "--chunk-size", "50"], tmp_path)
    assert stricter.returncode == 0, stricter.stderr
    assert "50 of" in stricter.stdout and "100 of" in stricter.stdout  # progress per chunk
    moved = count(tmp_path, "risk_level_changes") - changes_before
    assert moved > 0
    with engine.connect() as conn:
        audited = conn.execute(
            sa.text("SELECT count(*) FROM audit_entries WHERE action = 'risk.level_change'")
        ).scalar_one()
    assert audited == count(tmp_path, "risk_level_changes")
    assert run(["audit", "verify", "--quiet"], tmp_path).returncode == 0
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM risk_settings WHERE key = 'credit'"))
    engine.dispose()
    broken = run(["risk", "recompute"], tmp_path)
    assert broken.returncode != 0
    assert "risk settings credit are missing" in broken.stderr
