"""Logging filters named in ``settings.LOGGING``."""

from __future__ import annotations

import logging


class NoTracebackBelow500(logging.Filter):
    """Drop the traceback Django attaches to a refused request (403 and other 4xx).

    A permission check that says no is the portal working as meant; the one line naming
    the status and path is what an operator needs. Server errors keep their traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
