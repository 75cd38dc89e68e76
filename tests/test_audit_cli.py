"""``fieldapp audit verify`` as an operator runs it on a real database file."""

from __future__ import annotations

import sqlalchemy as sa

from fieldapp.audit.commands import verify_command
from tests.test_cli import run


def test_audit_verify_passes_on_an_intact_log_and_fails_naming_the_entry(tmp_path):
    assert run(["demo", "--scale", "small", "--no-serve"], tmp_path).returncode == 0
    good = run(["audit", "verify"], tmp_path)
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("ok: ") and "chain intact" in good.stdout
    assert "verifying" in good.stderr  # the progress bar (drawn in full on a terminal)

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'fieldapp.sqlite3'}")
    with engine.begin() as conn:
        entries = conn.execute(sa.text("SELECT count(*) FROM audit_entries")).scalar_one()
        assert entries > 0
        conn.execute(sa.text("DROP TRIGGER audit_entries_no_update"))
        conn.execute(sa.text("UPDATE audit_entries SET action = 'demo.forged' WHERE seq = 1"))
    engine.dispose()
    bad = run(["audit", "verify"], tmp_path)
    assert bad.returncode == 1
    assert "first bad entry seq 1 (altered)" in bad.stderr


def test_audit_verify_tells_a_database_it_cannot_reach_from_a_broken_chain(tmp_path):
    """Supervisors run the check from cron and alarm on its exit status: 1 says the log was
    tampered with, so a database that cannot be reached (restarting, network down) exits 2,
    as checkers do (cmp, diff) when they could not check, and says the chain was not
    checked."""
    from tests.test_cli import _free_port

    url = f"postgresql://fieldapp@127.0.0.1:{_free_port()}/fieldapp"
    result = run(["audit", "verify", "--quiet"], tmp_path, FIELDAPP_DATABASE_URL=url)
    assert result.returncode == 2, result.stderr
    assert "connection failed" in result.stderr and "the chain was not checked" in result.stderr
    assert "Traceback" not in result.stderr and "BROKEN" not in result.stderr


def test_audit_verify_exits_1_naming_an_entry_rewritten_to_json_python_cannot_encode(
    app, login, world, isolated
):
    """An entry whose ``after`` an insider rewrote to {"name": 1e400} (valid JSON to
    PostgreSQL, infinity to Python) is a broken chain (exit 1, naming it), not a check that
    could not run (exit 2): cron alarms on tampering only for 1."""
    from tests.test_audit import all_entries, busy_day, rewrite_column_by_hand

    busy_day(login, world)
    victim = next(r for r in all_entries(isolated) if r.action == "target.update")
    rewrite_column_by_hand(isolated, victim.seq, "after", '{"name": 1e400}')
    result = app.test_cli_runner().invoke(verify_command, ["--quiet"])
    assert result.exit_code == 1, result.output
    assert f"first bad entry seq {victim.seq} (altered)" in result.output
