"""gunicorn settings for serving fieldapp in production (README, "Production")::

    gunicorn -c python:fieldapp.web.gunicorn_conf --workers 4 --bind 0.0.0.0:8000 \\
        'fieldapp:create_app()'

The master checks the configuration before it starts any worker (:func:`on_starting`), and each
worker tunes its garbage collector once it has loaded the app (:func:`post_worker_init`).
"""

from __future__ import annotations

import gc

#: Collect the youngest generation after this many new container objects instead of 700.
#: A sync request builds tens of thousands of short-lived dicts and lists, and the default
#: collected hundreds of times per request, each time tracing what the previous ones left.
GC_THRESHOLDS = (20_000, 50, 100)


def on_starting(server) -> None:
    """Build the app once in the master, before any worker starts, and stop with one line and
    exit status 2 if the configuration is unusable.

    Without it every worker fails on its own with a traceback, and gunicorn adds its own
    (``HaltServer``) once they have all died. Building the whole app (not only the settings)
    runs every start-up check the workers will run. It also writes the generated secret key,
    when there is to be one, before the workers start.
    """
    from fieldapp import create_app
    from fieldapp.cli import report_config_error
    from fieldapp.config import ConfigError

    try:
        create_app()
    except ConfigError as exc:
        report_config_error(exc)
    # The check's app is garbage now: collect it here, or each worker's gc.freeze() would
    # keep it for good.
    gc.collect()


def post_worker_init(worker) -> None:
    """Tune the worker's garbage collector once the app is loaded.

    The app's own objects (models, schemas, routes, metadata) live as long as the worker:
    ``gc.freeze`` keeps every later collection from tracing them again. Together with the
    larger threshold this made pushes 1.2 times and pulls 1.7 times as fast in process
    (``bench/profile_sync.py`` with and without ``--default-gc``; ``docs/benchmarks.md``).
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
