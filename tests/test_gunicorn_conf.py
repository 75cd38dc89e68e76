"""The production gunicorn settings: the master checks the configuration before any worker
starts, and each worker tunes its garbage collector after the app loads."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
from pathlib import Path

from fieldapp.web import gunicorn_conf

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def test_a_worker_freezes_the_loaded_app_and_collects_less_often(app):
    before = gc.get_threshold()
    try:
        gunicorn_conf.post_worker_init(worker=None)
        assert gc.get_threshold() == gunicorn_conf.GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_configuration_error_stops_gunicorn_with_one_line_before_any_worker(tmp_path):
    """Started as README's "Production" says, with an unusable database URL: one line naming
    the variable and exit status 2, not a traceback per worker and gunicorn's HaltServer."""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FIELDAPP_")},
        "FIELDAPP_INSTANCE_PATH": str(tmp_path),
        "FIELDAPP_DATABASE_URL": "mysql://root@localhost/fieldapp",
    }
    result = subprocess.run(
        [
            GUNICORN,
            "-c",
            "python:fieldapp.web.gunicorn_conf",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{_free_port()}",
            "fieldapp:create_app()",
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "Booting worker" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if "fieldapp" in line]
    assert line.startswith("fieldapp: configuration error: FIELDAPP_DATABASE_URL='mysql://")
