"""Logging set-up: one line per request with its id, user and device."""

from __future__ import annotations

import logging
import sys


class _RequestContextDefaults(logging.Filter):
    """Give records from outside a request the fields the format expects."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name in ("request_id", "user", "device"):
            if not hasattr(record, name):
                setattr(record, name, "-")
        return True


def configure(level: str = "INFO") -> None:
    logger = logging.getLogger("fieldapp")
    if any(getattr(h, "_fieldapp", False) for h in logger.handlers):
        logger.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._fieldapp = True
    handler.addFilter(_RequestContextDefaults())
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s user=%(user)s "
            "device=%(device)s] %(message)s"
        )
    )
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
