"""``fieldapp audit verify`` as an operator runs it on a real database file."""

from __future__ import annotations

import sqlalchemy as sa

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
