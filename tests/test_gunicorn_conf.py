"""The production gunicorn settings tune each worker's garbage collector after the app loads."""

from __future__ import annotations

import gc

from fieldapp.web import gunicorn_conf


def test_a_worker_freezes_the_loaded_app_and_collects_less_often(app):
    before = gc.get_threshold()
    try:
        gunicorn_conf.post_worker_init(worker=None)
        assert gc.get_threshold() == gunicorn_conf.GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
