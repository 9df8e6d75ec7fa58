"""gunicorn settings of the portal's web service (the Dockerfile starts gunicorn with this file).

Any of them can be overridden at run time with GUNICORN_CMD_ARGS, e.g. "--workers 5".
"""

from __future__ import annotations

bind = "0.0.0.0:8000"
workers = 3
accesslog = "-"

# A sync worker that has not finished its request after this many seconds is killed, and the
# client gets a 502. The slowest request the documented limits allow is a bulk import of
# 10,000 files in a 100 MB upload (CERTS_MAX_FILES, CERTS_MAX_UPLOAD_BYTES): the body arrives
# while the clock runs (about 80 s at 10 Mbit/s) and is then read, matched and staged in a few
# seconds (10,000 rows: about 3 s on one core). 300 s covers that on slow links and slow hosts;
# gunicorn's 30 s default killed such imports. A reverse proxy that buffers request bodies
# takes the network time off this clock.
timeout = 300
# Time a worker gets to finish its request on restart or shutdown.
graceful_timeout = 30


def on_starting(server: object) -> None:
    # With threads (--threads above 1), spread connections over the workers: see portal.lib.serving.
    from portal.lib.serving import balance_threads

    balance_threads(server)
