"""The tamper-evident audit log: every change chained, tampering found, the log append-only.

Tampering is done the way an insider with database access would: plain SQL on the test's
connection, with the append-only triggers switched off first (they are part of what is tested).
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldapp.audit import chain
from fieldapp.audit import operations as audit
from fieldapp.audit.commands import verify_command
from fieldapp.audit.models import AuditEntry
from fieldapp.db import db
from fieldapp.localtime import SHANGHAI
from schemas.audit import AUDITED_ENTITIES
from sync.entities import HANDLERS
from tests.conftest import SYSTEM, assert_error, etag_of
from tests.sync_helpers import FakeDevice, new_inspection

ROOT = Path(__file__).resolve().parent.parent


def verify(api) -> dict:
    response = api.get("/api/v1/audit/verify")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def all_entries(connection) -> list:
    return connection.execute(sa.select(AuditEntry.__table__).order_by(AuditEntry.seq)).all()


def busy_day(login, world) -> None:
    """Sign-ins, a target edit and a sync push with a good and a rejected change."""
    leader = login("leader1")
    target = f"/api/v1/targets/{world.targets['shop1'].id}"
    response = leader.patch(
        target, json={"name": "老王面馆(总店)"}, headers={"If-Match": etag_of(leader, target)}
    )
    assert response.status_code == 200, response.get_json()
    device = FakeDevice(login("officer1"))
    results = device.push_ok(
        device.change("inspection", uuid.uuid4(), new_inspection(world, ["officer1", "officer2"])),
        device.change("inspection", uuid.uuid4(), new_inspection(world, ["officer3"])),
    )
    assert [r["status"] for r in results] == ["applied", "rejected"]


@pytest.fixture
def supervisor(login):
    return login("supervisor")


# -- the chain -----------------------------------------------------------------------------------


def test_every_entry_links_to_the_one_before_and_verifies(login, world, supervisor, isolated):
    busy_day(login, world)
    rows = all_entries(isolated)
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0].prev_hash == "0" * 64
    for before, entry in itertools.pairwise(rows):
        assert entry.prev_hash == before.hash
    assert all(chain.entry_hash(r) == r.hash for r in rows)
    assert verify(supervisor) == {
        "ok": True,
        "entries": len(rows),
        "first_bad_seq": None,
        "problem": None,
        "last_seq": len(rows),
        "last_hash": rows[-1].hash,
    }


def test_a_rejected_sync_change_leaves_no_entry(login, world, isolated):
    device = FakeDevice(login("officer1"))
    good, bad = uuid.uuid4(), uuid.uuid4()
    device.push_ok(
        device.change("inspection", good, new_inspection(world, ["officer1"])),
        device.change("inspection", bad, new_inspection(world, ["officer1"], origin="meteor")),
        device.change("inspection", good, {"findings": "门口堆物"}, base_version=1),
    )
    records = [r.record_id for r in all_entries(isolated) if r.entity == "inspection"]
    assert records == [str(good), str(good)]


def test_entries_of_a_rolled_back_savepoint_are_dropped_and_released_ones_kept(app, ctx, isolated):
    before = len(all_entries(isolated))
    savepoint = db.session.begin_nested()
    audit.record(SYSTEM, "test.kept", "thing", 1)
    savepoint.commit()
    savepoint = db.session.begin_nested()
    audit.record(SYSTEM, "test.dropped", "thing", 2)
    savepoint.rollback()
    audit.record(SYSTEM, "test.after", "thing", 3)
    db.session.commit()
    actions = [r.action for r in all_entries(isolated)[before:]]
    assert actions == ["test.kept", "test.after"]
    assert audit.verify(db.session()).ok


def test_the_canonical_encoding_is_plain_sorted_json(ctx):
    at = datetime(2026, 11, 21, 1, 2, 3, tzinfo=UTC)
    values = dict(
        at=at, actor_id=uuid.UUID(int=7), device_id="pad-1", action="target.update",
        entity="target", record_id="abc", before={"name": "老王"}, after={"b": 1, "a": [1.5]},
    )  # fmt: skip
    digest = chain.link(chain.content_members(**values), "f" * 64, 42)
    document = (
        '{"action":"target.update","actor_id":"00000000-0000-0000-0000-000000000007",'
        '"after":{"a":[1.5],"b":1},"at":"2026-11-21T01:02:03.000000+00:00",'
        '"before":{"name":"\\u8001\\u738b"},"device_id":"pad-1","entity":"target",'
        f'"prev_hash":"{"f" * 64}","record_id":"abc","seq":42}}'
    )
    assert digest == hashlib.sha256(document.encode()).hexdigest()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(before=json_values, after=json_values, record_id=st.none() | st.text(max_size=10))
def test_the_split_encoding_equals_hashing_the_whole_document(before, after, record_id):
    fields = dict(
        at=datetime(2026, 1, 1, tzinfo=UTC), actor_id=None, device_id=None, action="a",
        entity="e", record_id=record_id, before=before, after=after,
    )  # fmt: skip
    whole = {
        **fields,
        "at": chain.format_at(fields["at"]),
        "prev_hash": "0" * 64,
        "seq": 9,
    }
    expected = hashlib.sha256(chain.dumps(whole).encode()).hexdigest()
    assert chain.link(chain.content_members(**fields), "0" * 64, 9) == expected
    stored = SimpleNamespace(**fields, prev_hash="0" * 64, seq=9)
    stored.before, stored.after = chain.as_stored(before), chain.as_stored(after)
    assert chain.entry_hash(stored) == expected


def test_values_read_back_exactly_as_hashed(login, world, supervisor, isolated, ctx):
    # jsonb would turn 1e16 into 10000000000000000 and reorder keys; the log stores json text.
    audit.record(SYSTEM, "test.numbers", "thing", 1, after={"z": 1e16, "a": 0.1, "n": -0.0})
    db.session.commit()
    assert verify(supervisor)["ok"]


# -- tampering -----------------------------------------------------------------------------------


def unlock(connection) -> None:
    """What an insider must do first: switch off the append-only triggers."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("ALTER TABLE audit_entries DISABLE TRIGGER USER")
        connection.exec_driver_sql("ALTER TABLE audit_chain_head DISABLE TRIGGER USER")
    else:
        for name in (
            "audit_entries_no_update",
            "audit_entries_no_delete",
            "audit_chain_head_forward_only",
            "audit_chain_head_no_delete",
        ):
            connection.exec_driver_sql(f"DROP TRIGGER {name}")


entries_table = AuditEntry.__table__


def test_a_changed_entry_is_named(login, world, supervisor, isolated):
    busy_day(login, world)
    victim = next(r for r in all_entries(isolated) if r.action == "target.update")
    unlock(isolated)
    isolated.execute(
        entries_table.update()
        .where(entries_table.c.seq == victim.seq)
        .values(after={"name": "别人的面馆"})
    )
    result = verify(supervisor)
    assert (result["ok"], result["first_bad_seq"], result["problem"]) == (
        False,
        victim.seq,
        "altered",
    )
    assert result["entries"] == victim.seq - 1


def test_a_changed_entry_with_a_recomputed_hash_is_still_named(login, world, supervisor, isolated):
    busy_day(login, world)
    victim = next(r for r in all_entries(isolated) if r.action == "target.update")
    forged = SimpleNamespace(**{**victim._asdict(), "after": {"name": "别人的面馆"}})
    unlock(isolated)
    isolated.execute(
        entries_table.update()
        .where(entries_table.c.seq == victim.seq)
        .values(after=forged.after, hash=chain.entry_hash(forged))
    )
    result = verify(supervisor)
    assert (result["first_bad_seq"], result["problem"]) == (victim.seq, "altered")


def rewrite_column_by_hand(connection, seq: int, column: str, text: str) -> None:
    """An insider writes ``text`` into one column of an entry with plain SQL, as the database
    takes it (no application type in between)."""
    unlock(connection)
    connection.execute(
        sa.text(f"UPDATE audit_entries SET {column} = :text WHERE seq = :seq"),
        {"text": text, "seq": seq},
    )


@pytest.mark.parametrize(
    "text",
    [
        '{"name": 1e400}',  # valid JSON to PostgreSQL's json type; infinity to Python
        '{"name": "别人的面馆"',  # cut off (SQLite stores any text)
    ],
    ids=["huge-number", "cut-off"],
)
def test_an_entry_whose_after_no_longer_reads_as_json_is_named_altered(
    login, world, supervisor, isolated, text
):
    """The check reads what is stored, not what the ORM can decode: JSON that Python reads as
    infinity (which canonical JSON refuses) or cut off mid-text is an alteration at that seq,
    not a 500 from GET /audit/verify."""
    if text.endswith('"') and isolated.dialect.name == "postgresql":
        pytest.skip("PostgreSQL's json type refuses malformed text")
    busy_day(login, world)
    victim = next(r for r in all_entries(isolated) if r.action == "target.update")
    rewrite_column_by_hand(isolated, victim.seq, "after", text)
    result = verify(supervisor)
    assert (result["ok"], result["first_bad_seq"], result["problem"]) == (
        False,
        victim.seq,
        "altered",
    )
    assert result["entries"] == victim.seq - 1


@pytest.mark.parametrize(
    "text, dialect",
    [
        ("yesterday at noon", "sqlite"),  # SQLite keeps any text in any column
        ("infinity", "postgresql"),  # a timestamptz PostgreSQL takes and Python cannot hold
        ("10000-01-01 00:00:00+00", "postgresql"),  # past Python's year 9999
    ],
)
def test_an_entry_whose_time_no_longer_reads_as_a_time_is_named_altered(
    login, world, supervisor, isolated, text, dialect
):
    if isolated.dialect.name != dialect:
        pytest.skip(f"a {dialect} case")
    busy_day(login, world)
    victim = next(r for r in all_entries(isolated) if r.action == "target.update")
    rewrite_column_by_hand(isolated, victim.seq, "at", text)
    result = verify(supervisor)
    assert (result["ok"], result["first_bad_seq"], result["problem"]) == (
        False,
        victim.seq,
        "altered",
    )


def test_a_deleted_entry_is_named(login, world, supervisor, isolated):
    busy_day(login, world)
    rows = all_entries(isolated)
    victim = rows[len(rows) // 2]
    unlock(isolated)
    isolated.execute(entries_table.delete().where(entries_table.c.seq == victim.seq))
    result = verify(supervisor)
    assert (result["ok"], result["first_bad_seq"], result["problem"]) == (
        False,
        victim.seq,
        "missing",
    )


def test_entries_cut_off_the_end_are_named(login, world, supervisor, isolated):
    busy_day(login, world)
    last = all_entries(isolated)[-1].seq
    unlock(isolated)
    isolated.execute(entries_table.delete().where(entries_table.c.seq >= last - 1))
    result = verify(supervisor)
    assert (result["first_bad_seq"], result["problem"]) == (last - 1, "missing")


def test_reordered_entries_are_named(login, world, supervisor, isolated):
    busy_day(login, world)
    rows = all_entries(isolated)
    first, second = rows[3].seq, rows[6].seq
    unlock(isolated)
    seq = entries_table.c.seq
    isolated.execute(entries_table.update().where(seq == first).values(seq=-1))
    isolated.execute(entries_table.update().where(seq == second).values(seq=first))
    isolated.execute(entries_table.update().where(seq == -1).values(seq=second))
    result = verify(supervisor)
    assert (result["ok"], result["first_bad_seq"]) == (False, first)


def test_an_entry_slipped_in_behind_the_app_is_named(login, world, supervisor, isolated):
    busy_day(login, world)
    last = all_entries(isolated)[-1]
    row = {**last._asdict(), "seq": last.seq + 1, "prev_hash": last.hash, "action": "x.forged"}
    row["hash"] = chain.entry_hash(SimpleNamespace(**row))
    isolated.execute(entries_table.insert().values(row))
    result = verify(supervisor)
    assert (result["first_bad_seq"], result["problem"]) == (last.seq + 1, "unexpected")


def test_an_entry_slipped_in_past_the_end_with_a_gap_is_named_unexpected(
    login, world, supervisor, isolated
):
    """An entry numbered a few past the chain's end (seq last+5, chained from the last hash):
    nothing was removed, the one bad entry is the one added. Naming last+1 ``missing`` would
    send the operator looking for a deleted entry that never existed."""
    busy_day(login, world)
    last = all_entries(isolated)[-1]
    row = {**last._asdict(), "seq": last.seq + 5, "prev_hash": last.hash, "action": "x.forged"}
    row["hash"] = chain.entry_hash(SimpleNamespace(**row))
    isolated.execute(entries_table.insert().values(row))
    result = verify(supervisor)
    assert (result["ok"], result["first_bad_seq"], result["problem"]) == (
        False,
        last.seq + 5,
        "unexpected",
    )
    assert result["entries"] == last.seq


def test_a_gap_before_the_head_is_still_missing_when_entries_follow_past_it(
    login, world, supervisor, isolated
):
    """The last entry deleted and one added past the head: what was removed comes first."""
    busy_day(login, world)
    last = all_entries(isolated)[-1]
    row = {**last._asdict(), "seq": last.seq + 3, "action": "x.forged"}
    row["hash"] = chain.entry_hash(SimpleNamespace(**row))
    unlock(isolated)
    isolated.execute(entries_table.delete().where(entries_table.c.seq == last.seq))
    isolated.execute(entries_table.insert().values(row))
    result = verify(supervisor)
    assert (result["first_bad_seq"], result["problem"]) == (last.seq, "missing")


def test_an_entry_slipped_in_before_the_first_is_named(login, world, supervisor, isolated):
    """Numbered 0, before entry 1, and chained from the genesis hash like a first entry."""
    busy_day(login, world)
    first = all_entries(isolated)[0]
    row = {**first._asdict(), "seq": 0, "action": "x.forged"}
    row["hash"] = chain.entry_hash(SimpleNamespace(**row))
    isolated.execute(entries_table.insert().values(row))
    result = verify(supervisor)
    assert (result["ok"], result["first_bad_seq"], result["problem"]) == (False, 0, "unexpected")


def test_a_deleted_chain_head_is_a_verdict_and_writes_are_refused_clearly(
    app, login, world, supervisor, isolated
):
    busy_day(login, world)
    leader = login("leader1")
    entries = len(all_entries(isolated))
    unlock(isolated)
    isolated.exec_driver_sql("DELETE FROM audit_chain_head")
    result = verify(supervisor)
    assert (result["ok"], result["first_bad_seq"], result["problem"]) == (
        False,
        None,
        "head_missing",
    )
    assert result["entries"] == entries  # the entries themselves are intact
    target = f"/api/v1/targets/{world.targets['shop1'].id}"
    response = leader.patch(
        target, json={"name": "改名"}, headers={"If-Match": etag_of(leader, target)}
    )
    body = assert_error(response, 503, "audit_unavailable")
    assert "chain head" in body["message"]
    assert leader.get(target).get_json()["name"] == "老王面馆(总店)"  # nothing was written
    cli = app.test_cli_runner().invoke(verify_command, ["--quiet"])
    assert cli.exit_code == 1 and "head_missing" in cli.output, cli.output


# -- append-only ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        entries_table.update().values(action="x"),
        entries_table.delete(),
        sa.text("UPDATE audit_chain_head SET seq = seq - 1"),
        sa.text("DELETE FROM audit_chain_head"),
    ],
    ids=["update-entries", "delete-entries", "move-head-back", "delete-head"],
)
def test_the_database_refuses_to_change_or_remove_entries(login, world, isolated, statement):
    busy_day(login, world)
    refused = r"append-only|only moves forward"
    with pytest.raises(sa.exc.DBAPIError, match=refused), isolated.begin_nested():
        isolated.execute(statement)


def test_truncate_is_refused_on_postgresql(login, world, isolated):
    if isolated.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    busy_day(login, world)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), isolated.begin_nested():
        isolated.exec_driver_sql("TRUNCATE audit_entries CASCADE")


def test_the_application_has_no_path_that_updates_or_deletes_entries():
    writes = re.compile(
        r"(update|delete)\(\s*(AuditEntry|audit_entries)\b"
        r"|(UPDATE|DELETE FROM)\s+audit_entries"
        r"|session\.delete\(\s*entry"
    )
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("fieldapp", "sync")
        for path in (ROOT / folder).rglob("*.py")
        if "migrations" not in path.parts
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if writes.search(line)
    ]
    # The chain head moves forward in exactly one place.
    assert offenders == [], offenders
    head_updates = [
        path.name
        for path in (ROOT / "fieldapp").rglob("*.py")
        if "update(audit_chain_head)" in path.read_text().replace("sa.", "")
    ]
    assert head_updates == ["operations.py"]


# -- reading the log -----------------------------------------------------------------------------


def test_supervisors_filter_the_log_by_record_actor_and_time(login, world, supervisor):
    busy_day(login, world)
    shop = str(world.targets["shop1"].id)
    page = supervisor.get(f"/api/v1/audit?entity=target&record_id={shop}").get_json()
    assert [e["action"] for e in page["items"]] == ["target.update", "target.create"]
    entry = page["items"][0]
    assert set(entry) >= {
        "seq", "at", "actor_id", "device_id", "action", "entity", "record_id", "before",
        "after", "prev_hash", "hash",
    }  # fmt: skip
    assert entry["actor_id"] == str(world.users["leader1"].id)
    assert entry["device_id"] == "dev-leader1"
    assert entry["before"] == {"name": "老王面馆"} and entry["after"] == {"name": "老王面馆(总店)"}

    officer = str(world.users["officer1"].id)
    mine = supervisor.get(f"/api/v1/audit?actor_id={officer}&per_page=200").get_json()["items"]
    assert {e["action"] for e in mine} == {"auth.login", "inspection.create"}

    now = datetime.now(UTC)
    recent = supervisor.get(
        "/api/v1/audit",
        query_string={"from": (now - timedelta(minutes=5)).isoformat(), "to": now.isoformat()},
    ).get_json()["items"]
    assert recent and all(e["at"] >= (now - timedelta(minutes=5)).isoformat() for e in recent)
    future = supervisor.get(
        "/api/v1/audit", query_string={"from": (now + timedelta(days=1)).isoformat()}
    ).get_json()
    assert future["items"] == []


def test_from_and_to_take_a_shanghai_date_like_the_inspection_list(login, world, supervisor):
    """``/audit?from=&to=`` read dates as ``/inspections`` does: a plain date is that Shanghai
    day, and ``to`` includes it. The day is the newest entry's own, so a test run across
    midnight asks for the right one."""
    busy_day(login, world)
    newest = supervisor.get("/api/v1/audit?per_page=1").get_json()["items"][0]
    day = datetime.fromisoformat(newest["at"]).astimezone(SHANGHAI).date()

    def seqs(**bounds) -> list[int]:
        response = supervisor.get("/api/v1/audit", query_string={"per_page": 200, **bounds})
        assert response.status_code == 200, response.get_json()
        return [e["seq"] for e in response.get_json()["items"]]

    assert newest["seq"] in seqs(**{"from": day.isoformat(), "to": day.isoformat()})
    assert newest["seq"] in seqs(to=day.isoformat())
    assert seqs(to=(day - timedelta(days=1)).isoformat()) == []
    assert seqs(**{"from": (day + timedelta(days=1)).isoformat()}) == []
    later = {"from": (day + timedelta(days=1)).isoformat(), "to": day.isoformat()}
    body = assert_error(
        supervisor.get("/api/v1/audit", query_string=later), 422, "validation_failed"
    )
    assert body["errors"]["query"] == {"to": ["must be after from"]}


def test_the_log_pages_newest_first(login, world, supervisor):
    busy_day(login, world)
    first = supervisor.get("/api/v1/audit?per_page=3").get_json()
    second = supervisor.get("/api/v1/audit?per_page=3&page=2").get_json()
    seqs = [e["seq"] for e in first["items"] + second["items"]]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 6
    assert first["has_more"]


@pytest.mark.parametrize("username", ["officer1", "leader1"])
def test_only_supervisors_and_admins_read_the_log(login, world, username):
    api = login(username)
    assert_error(api.get("/api/v1/audit"), 403, "forbidden")
    assert_error(api.get("/api/v1/audit/verify"), 403, "forbidden")
    assert login("admin").get("/api/v1/audit/verify").get_json()["ok"]


@pytest.mark.parametrize(
    "query, field",
    [
        ("actor_id=someone", "actor_id"),
        ("from=2026-11-01T00:00:00", "from"),
        ("from=yesterday", "from"),
        ("from=2026-11-02T00:00:00%2B08:00&to=2026-11-01T00:00:00%2B08:00", "to"),
        ("per_page=0", "per_page"),
        ("entity=" + "x" * 41, "entity"),
        # A plural (the name of the URL, not of the entry) answered an empty history, as if
        # the district had none.
        ("entity=inspections", "entity"),
        ("entity=Target", "entity"),
    ],
)
def test_bad_filters_are_422_with_the_field(supervisor, query, field):
    body = assert_error(supervisor.get(f"/api/v1/audit?{query}"), 422, "validation_failed")
    assert field in body["errors"]["query"]


def test_the_entity_filter_takes_every_entity_the_log_writes_and_no_other(supervisor):
    """The filter's list (schemas.audit.AUDITED_ENTITIES) is the entities the code writes
    entries about: the literal names given to audit.record, entry_values, record_update and
    move_to_squadron, and the sync handlers' entities (their entries name self.entity)."""
    writers = {"record": 2, "entry_values": 2, "record_update": 2, "move_to_squadron": 3}
    written = set(HANDLERS)
    for folder in ("fieldapp", "sync"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "attr", getattr(node.func, "id", None))
                place = writers.get(name)
                if place is None or len(node.args) <= place:
                    continue
                entity = node.args[place]
                if isinstance(entity, ast.Constant) and isinstance(entity.value, str):
                    written.add(entity.value)
    assert written == set(AUDITED_ENTITIES)
    for entity in AUDITED_ENTITIES:
        assert supervisor.get(f"/api/v1/audit?entity={entity}").status_code == 200, entity


def test_an_audit_search_by_a_uuid_finds_the_record_however_it_is_written(login, world, supervisor):
    """Record ids are client UUIDs, and a pad may write them in capitals (iOS's uuidString);
    GET /targets/<ID> finds the record whichever case, but ?record_id= compared the text with
    the stored lower-case form and answered an empty history."""
    busy_day(login, world)
    record_id = str(world.targets["shop1"].id)

    def seqs(spelling: str) -> list[int]:
        response = supervisor.get("/api/v1/audit", query_string={"record_id": spelling})
        assert response.status_code == 200, response.get_json()
        return [e["seq"] for e in response.get_json()["items"]]

    found = seqs(record_id)
    assert found  # target.create, target.update, its risk
    assert supervisor.get(f"/api/v1/targets/{record_id.upper()}").status_code == 200
    assert seqs(record_id.upper()) == found
    assert seqs(record_id.replace("-", "")) == found
    assert seqs(record_id.upper() + "0") == []  # not a UUID: searched as written


def test_a_device_whose_id_is_a_uuid_in_capitals_is_found_by_its_own_id(login, world, supervisor):
    """A device's id is its own text (an iOS pad may use its identifierForVendor, a UUID in
    capitals): its entries carry it so, and a search names it so."""
    device_id = "6F9619FF-8B86-4011-B42D-00C04FC964FF"
    login("officer1", device_id)
    admin = login("admin")
    assert admin.post(f"/api/v1/devices/{device_id}/revoke").status_code == 200
    entries = supervisor.get(
        "/api/v1/audit", query_string={"entity": "device", "record_id": device_id}
    ).get_json()["items"]
    assert [(e["action"], e["record_id"]) for e in entries] == [("device.revoke", device_id)]


def test_the_log_is_readable_as_json_text(login, world, supervisor):
    busy_day(login, world)
    entry = supervisor.get("/api/v1/audit?entity=inspection").get_json()["items"][0]
    assert json.loads(json.dumps(entry["after"]))["status"] == "draft"


# -- the migration ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_migration_chains_entries_written_before_the_chain(tmp_path, monkeypatch, kind):
    from flask_migrate import upgrade

    from fieldapp import create_app
    from tests.conftest import FAST_PASSWORDS, _create_pg_database, drop_pg_database

    created = None
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    else:
        created = _create_pg_database()
        if created is None:
            pytest.skip("PostgreSQL not reachable")
        url = created[0]
    monkeypatch.setenv("FIELDAPP_INSTANCE_PATH", str(tmp_path))
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, **FAST_PASSWORDS})
    try:
        with app.app_context():
            upgrade(revision="0006")
            # Old entries: numbered by a sequence, with gaps from rolled-back transactions.
            for seq in (3, 4, 9):
                db.session.execute(
                    sa.text(
                        "INSERT INTO audit_entries (seq, at, action, entity, record_id, after) "
                        "VALUES (:seq, :at, 'old.action', 'thing', :rid, :after)"
                    ),
                    {"seq": seq, "at": datetime(2026, 1, seq, tzinfo=UTC).replace(tzinfo=None),
                     "rid": str(seq), "after": json.dumps({"n": seq, "x": 1e16})},
                )  # fmt: skip
            db.session.commit()
            upgrade()
            rows = db.session.execute(sa.select(AuditEntry).order_by(AuditEntry.seq)).scalars()
            assert [(e.seq, e.record_id) for e in rows] == [(1, "3"), (2, "4"), (3, "9")]
            audit.record(SYSTEM, "new.action", "thing", 10)
            db.session.commit()
            verdict = audit.verify(db.session())
            assert (verdict.ok, verdict.entries) == (True, 4)
            db.session.remove()
            db.engine.dispose()
    finally:
        if created is not None:
            drop_pg_database(created[1], url)


def add_supervisor_of_another_district(app) -> None:
    """``supervisor_pd``: the supervisor of 浦东新区, a district with none of the world's
    squadrons (signs in with the usual password)."""
    from fieldapp.auth import operations as auth_ops
    from fieldapp.auth.models import Role
    from fieldapp.org.models import District
    from tests.conftest import PASSWORD

    with app.app_context():
        other = District(code="310115", name="浦东新区")
        db.session.add(other)
        db.session.flush()
        auth_ops.create_user(
            SYSTEM,
            app.extensions["fieldapp.auth"],
            username="supervisor_pd",
            name="浦东督察",
            role=Role.supervisor,
            password=PASSWORD,
            district_id=other.id,
            squadron=None,
        )
        db.session.commit()


def test_a_supervisor_reads_only_the_entries_of_their_district(app, login, world):
    """API.md: supervisors "read their whole district". 浦东's supervisor does not see 宝山's
    inspection (404), nor its history through the log; an admin sees everything."""
    from tests.review_helpers import push_inspection

    inspection_id = push_inspection(world, FakeDevice(login("officer1")))
    add_supervisor_of_another_district(app)
    outsider = login("supervisor_pd")
    assert outsider.get(f"/api/v1/inspections/{inspection_id}").status_code == 404
    query = f"/api/v1/audit?record_id={inspection_id}"
    assert outsider.get(query).get_json()["items"] == []
    officer1 = str(world.users["officer1"].id)
    assert outsider.get(f"/api/v1/audit?actor_id={officer1}").get_json()["items"] == []
    for reader in ("supervisor", "admin"):
        entries = login(reader).get(query).get_json()["items"]
        assert [e["action"] for e in entries] == ["inspection.create"], entries


def transfer_officer1_to_another_district(app, login, world) -> str:
    """officer1 inspects in 宝山 (pushes an inspection), then is transferred to 闵行's 莘庄中队,
    which has its own supervisor ``supervisor_mh``. Returns the 宝山 inspection's id."""
    from fieldapp.auth import operations as auth_ops
    from fieldapp.auth.models import Role
    from tests.conftest import PASSWORD, other_district
    from tests.review_helpers import push_inspection

    inspection_id = push_inspection(world, FakeDevice(login("officer1")))
    district_id, squadron_id = other_district(app)
    with app.app_context():
        auth_ops.create_user(
            SYSTEM,
            app.extensions["fieldapp.auth"],
            username="supervisor_mh",
            name="闵行督察",
            role=Role.supervisor,
            password=PASSWORD,
            district_id=district_id,
            squadron=None,
        )
        db.session.commit()
    admin = login("admin")
    path = f"/api/v1/users/{world.users['officer1'].id}"
    moved = admin.patch(
        path, json={"squadron_id": squadron_id}, headers={"If-Match": etag_of(admin, path)}
    )
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["district_id"] == district_id
    return inspection_id


def test_an_officers_old_district_keeps_the_history_of_their_records_after_a_transfer(
    app, login, world
):
    """DESIGN.md: supervisors audit any record in the district, its full history. The
    inspection stays 宝山's after its officer is transferred to 闵行: 宝山's supervisor still
    reads its creation, and 闵行's, who may not read the inspection (404), may not read its
    content through the log either."""
    inspection_id = transfer_officer1_to_another_district(app, login, world)
    query = f"/api/v1/audit?entity=inspection&record_id={inspection_id}"
    baoshan, minhang = login("supervisor"), login("supervisor_mh")
    assert baoshan.get(f"/api/v1/inspections/{inspection_id}").status_code == 200
    assert [e["action"] for e in baoshan.get(query).get_json()["items"]] == ["inspection.create"]
    assert minhang.get(f"/api/v1/inspections/{inspection_id}").status_code == 404
    assert minhang.get(query).get_json()["items"] == []


def test_entries_about_a_districts_record_are_that_districts_whoever_wrote_them(app, login, world):
    """An operator command (no user) that changes a 宝山 target writes an entry 宝山's
    supervisor reads and another district's does not; an admin reads it, with its district."""
    from fieldapp.targets import operations as target_ops
    from fieldapp.targets.models import Target

    add_supervisor_of_another_district(app)
    shop = world.targets["shop1"].id
    with app.app_context():
        target_ops.update_target(SYSTEM, db.session.get(Target, shop), {"name": "老王面馆(导入)"})
        db.session.commit()
    query = f"/api/v1/audit?entity=target&record_id={shop}"
    assert login("supervisor_pd").get(query).get_json()["items"] == []
    entry = login("supervisor").get(query).get_json()["items"][0]
    assert (entry["action"], entry["actor_id"]) == ("target.update", None)
    entry = login("admin").get(query).get_json()["items"][0]
    assert entry["district_id"] == world.district.id


def test_failed_sign_ins_are_read_by_the_accounts_supervisor_and_admins(app, client, login, world):
    """Password guessing on an account is in that account's history, which its district's
    supervisor reads (as another district's does not). Attempts on a username nobody has are
    for admins only: what is typed as a username is sometimes a password. The chain holds."""

    add_supervisor_of_another_district(app)
    for username in ("officer1", "fieldapp-demo"):  # the second: a password in the wrong field
        attempt = {"username": username, "password": "guess-7", "device_id": "pad-x"}
        assert client.post("/api/v1/auth/token", json=attempt).status_code == 401

    def failures(reader: str) -> list[str]:
        page = login(reader).get("/api/v1/audit?per_page=200").get_json()
        return [e["after"]["username"] for e in page["items"] if e["action"] == "auth.login_failed"]

    assert failures("admin") == ["fieldapp-demo", "officer1"]
    assert failures("supervisor") == ["officer1"]
    assert failures("supervisor_pd") == []
    officer1 = str(world.users["officer1"].id)
    history = login("supervisor").get(f"/api/v1/audit?entity=user&record_id={officer1}")
    assert [e["action"] for e in history.get_json()["items"]] == [
        "auth.login_failed",
        "user.create",
    ]
    assert verify(login("admin"))["ok"]


# -- what entries hold ---------------------------------------------------------------------------


def record_entries(supervisor, entity: str, record_id) -> list[dict]:
    """Every entry about one record, oldest first, as a supervisor reads them."""
    response = supervisor.get(f"/api/v1/audit?entity={entity}&record_id={record_id}&per_page=200")
    assert response.status_code == 200, response.get_json()
    return list(reversed(response.get_json()["items"]))


def test_a_photos_changed_capture_time_shows_in_the_log_before_and_after(login, world, supervisor):
    """A device changes the capture time of a photo already synced, from 09:35 to 09:58: the
    photo's entry holds both times. Photo metadata keeps no versions, so the time a photo first
    claimed (which the case-file checks judge when its bytes carry no EXIF time) can be read
    nowhere else. Before, the entries held only the names of the fields written."""
    from tests.review_helpers import push_inspection
    from tests.sync_helpers import photo_metadata

    device = FakeDevice(login("officer1"))
    inspection_id = push_inspection(world, device, status="draft")
    photo_id = uuid.uuid4()
    [created] = device.push_ok(device.change("photo", photo_id, photo_metadata(inspection_id)))
    [edited] = device.push_ok(
        device.change(
            "photo",
            photo_id,
            {"taken_at": "2026-11-20T09:58:00+08:00", "item_code": "S02"},
            base_version=created["version"],
        )
    )
    assert edited["status"] == "applied", edited

    create, edit = record_entries(supervisor, "photo", photo_id)
    assert create["action"] == edit["action"] == "photo.metadata"
    assert create["before"] is None
    assert create["after"] == {
        **photo_metadata(inspection_id, taken_at="2026-11-20T01:35:00+00:00"),
        "item_code": None,
        "location": None,
        "uploaded": False,
        "version": 1,
    }
    assert edit["before"] == {"taken_at": "2026-11-20T01:35:00+00:00", "item_code": None}
    assert edit["after"] == {"taken_at": "2026-11-20T01:58:00+00:00", "item_code": "S02"}
    # Sent again with the value it has, from the same device: nothing written, nothing logged.
    [again] = device.push_ok(
        device.change("photo", photo_id, {"item_code": "S02"}, base_version=edited["version"])
    )
    assert again["version"] == edited["version"]
    assert len(record_entries(supervisor, "photo", photo_id)) == 2
    # The place it claims, as stored (WGS-84).
    device.push_ok(
        device.change(
            "photo",
            photo_id,
            {"location": {"lon": 121.47, "lat": 31.37, "accuracy_m": 8.0}},
            base_version=again["version"],
        )
    )
    placed = record_entries(supervisor, "photo", photo_id)[-1]
    assert placed["before"] == {"location": None}
    assert placed["after"] == {
        "location": {"lon": 121.47, "lat": 31.37, "accuracy_m": 8.0, "crs": "wgs84"}
    }


def test_what_a_leader_deleted_can_be_read_in_the_log(login, world, supervisor):
    """An officer asks to delete a submitted inspection and the leader accepts: the inspection
    is gone (its record and history answer 404), and the delete's entry holds it as it was
    deleted, with each of its photos' metadata in theirs. Before, the entry held only
    ``{"version": 1}``, and what the record said (findings, answers, when and where) was in no
    entry: evidence of a finding could vanish without the log saying what it was."""
    from tests.review_helpers import inspection_path, push_inspection
    from tests.sync_helpers import photo_metadata

    device = FakeDevice(login("officer1"))
    findings = "门前堆放纸箱三堆, 占用人行道约4平方米"
    inspection_id = push_inspection(world, device, findings=findings)
    photo_id = uuid.uuid4()
    device.push_ok(device.change("photo", photo_id, photo_metadata(inspection_id)))
    [logged] = device.push_ok(
        device.change("inspection", inspection_id, op="delete", base_version=1)
    )
    assert logged["status"] == "conflict", logged
    leader = login("leader1")
    [entry] = leader.get(f"/api/v1/conflicts?record_id={inspection_id}").get_json()["items"]
    record = leader.get(inspection_path(inspection_id)).get_json()
    resolved = leader.post(f"/api/v1/conflicts/{entry['id']}/resolve", json={"keep": "client"})
    assert resolved.status_code == 200, resolved.get_json()
    assert leader.get(inspection_path(inspection_id)).status_code == 404
    assert leader.get(f"{inspection_path(inspection_id)}/history").status_code == 404

    [deleted] = [
        e
        for e in record_entries(supervisor, "inspection", inspection_id)
        if e["action"] == "inspection.delete"
    ]
    assert deleted["actor_id"] == str(world.users["leader1"].id)
    assert deleted["before"] == {k: v for k, v in record.items() if k in deleted["before"]}
    assert deleted["before"]["findings"] == findings
    assert deleted["before"]["target_id"] == str(world.targets["shop1"].id)
    assert deleted["before"]["answers"] == record["answers"] and deleted["after"] is None
    photo_deleted = record_entries(supervisor, "photo", photo_id)[-1]
    assert photo_deleted["action"] == "photo.delete"
    assert photo_deleted["before"]["taken_at"] == "2026-11-20T01:35:00+00:00"
    assert photo_deleted["before"]["inspection_id"] == inspection_id
    assert verify(supervisor)["ok"]


def test_a_draft_a_device_deletes_can_be_read_in_the_log(login, world, supervisor):
    """A device deletes its own draft, and then a photo of another draft: each entry holds the
    record as it was deleted."""
    from tests.review_helpers import push_inspection
    from tests.sync_helpers import photo_metadata

    device = FakeDevice(login("officer1"))
    draft = push_inspection(world, device, status="draft", findings="草稿: 待补拍照片")
    [gone] = device.push_ok(device.change("inspection", draft, op="delete", base_version=1))
    assert gone["status"] == "applied", gone
    deleted = record_entries(supervisor, "inspection", draft)[-1]
    assert deleted["action"] == "inspection.delete"
    assert (deleted["before"]["findings"], deleted["before"]["status"]) == (
        "草稿: 待补拍照片",
        "draft",
    )

    other = push_inspection(world, device, status="draft")
    photo_id = uuid.uuid4()
    [created] = device.push_ok(device.change("photo", photo_id, photo_metadata(other)))
    [removed] = device.push_ok(
        device.change("photo", photo_id, op="delete", base_version=created["version"])
    )
    assert removed["status"] == "applied", removed
    entry = record_entries(supervisor, "photo", photo_id)[-1]
    assert entry["action"] == "photo.delete"
    assert entry["before"]["sha256"] == "ab" * 32 and entry["before"]["version"] == 1
