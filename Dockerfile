FROM python:3.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORTAL_DATA_DIR=/var/lib/pfx-portal \
    STATIC_ROOT=/opt/pfx-portal/staticfiles

WORKDIR /opt/pfx-portal
COPY requirements/ requirements/
RUN pip install --no-cache-dir -r requirements/base.txt
COPY . .
RUN PORTAL_ENV=development python manage.py collectstatic --noinput -v0 \
    && useradd --system --home /var/lib/pfx-portal --create-home portal \
    && rm -rf /var/lib/pfx-portal/* && chown portal /var/lib/pfx-portal \
    && mkdir -p /data/connector && chown portal /data/connector && chmod 700 /data/connector
USER portal
EXPOSE 8000
# granian serves the WSGI app: HTTP is parsed and written in Rust, outside Python's lock, so a
# request costs about half the CPU it did under gunicorn's threaded workers (README, "Web server").
# Each setting can be overridden with its GRANIAN_* variable at run time.
ENV GRANIAN_INTERFACE=wsgi \
    GRANIAN_HOST=0.0.0.0 \
    GRANIAN_PORT=8000 \
    GRANIAN_WORKERS=2 \
    GRANIAN_BLOCKING_THREADS=4 \
    GRANIAN_RESPAWN_FAILED_WORKERS=true \
    GRANIAN_WORKERS_KILL_TIMEOUT=30 \
    GRANIAN_LOG_ACCESS_ENABLED=true \
    GRANIAN_WEBSOCKETS=false
CMD ["granian", "portal.wsgi:application"]
