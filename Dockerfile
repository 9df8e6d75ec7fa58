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
# Bind address, workers and the request timeout (sized for the bulk import limits) are in gunicorn.conf.py.
CMD ["gunicorn", "portal.wsgi", "--config", "gunicorn.conf.py"]
