"""A PFX password never rests anywhere in the clear: database, broker, result backend, cache or logs.

Runs the real pipeline (a separate Celery worker process) on whichever database and broker
the settings name: SQLite and the file broker by default, PostgreSQL and Redis with
DATABASE_URL and REDIS_URL set.
"""

from __future__ import annotations

import base64
import io
import logging
import subprocess
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from certs.models import Certificate, ImportBatch
from certs.tests.importing import add_key, directory_user, pfx_for
from conftest import wait_for

ALICE = "alice@contoso.example"
BOB = "bob@contoso.example"


def encodings(secret: str) -> list[bytes]:
    """The password as it could appear: plain, Base64 (at every alignment), hex and UTF-16."""
    raw = secret.encode()
    found = [
        raw,
        raw.hex().encode(),
        raw.hex().upper().encode(),
        secret.encode("utf-16-le"),
        secret.encode("utf-16-be"),
    ]
    for shift in range(3):
        for alphabet in (base64.b64encode, base64.urlsafe_b64encode):
            text = alphabet(b"\0" * shift + raw)
            # Drop the characters that depend on the neighbouring bytes on either side.
            found.append(text[(shift * 4 + 2) // 3 + 1 : -4])
    return found


def database_dump() -> bytes:
    """Every row of every table, binary columns included."""
    out = io.BytesIO()
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                for value in row:
                    out.write(bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode())
                    out.write(b"\n")
    return out.getvalue()


def sqlite_file() -> bytes:
    name = str(connection.settings_dict["NAME"])
    if connection.vendor != "sqlite" or not Path(name).exists():
        return b""
    data = Path(name).read_bytes()
    for suffix in ("-wal", "-journal"):
        if Path(name + suffix).exists():
            data += Path(name + suffix).read_bytes()
    return data


def redis_dump() -> bytes:
    urls = {
        u
        for u in (
            settings.CELERY_BROKER_URL,
            settings.CELERY_RESULT_BACKEND or "",
            settings.REDIS_URL,
        )
        if u.startswith("redis")
    }
    if not urls:
        return b""
    import redis

    out = io.BytesIO()
    for url in urls:
        client: Any = redis.Redis.from_url(url)
        for key in client.scan_iter(count=1000):
            out.write(key)
            kind = client.type(key)
            if kind == b"string":
                out.write(client.get(key) or b"")
            elif kind == b"list":
                out.write(b"".join(client.lrange(key, 0, -1)))
            elif kind == b"hash":
                out.write(b"".join(k + v for k, v in client.hgetall(key).items()))
            elif kind == b"set":
                out.write(b"".join(client.smembers(key)))
            elif kind == b"zset":
                out.write(b"".join(client.zrange(key, 0, -1)))
    return out.getvalue()


def folder_dump(folder: Path | None) -> bytes:
    if folder is None or not folder.exists():
        return b""
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def _upload(name: str, data: bytes) -> io.BytesIO:
    f = io.BytesIO(data)
    f.name = name
    return f


@pytest.mark.worker
def test_a_password_is_nowhere_in_the_clear_after_import(
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    celery_worker: subprocess.Popen[bytes],
    broker_folder: Path | None,
    intune_admin: Any,
    settings: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings.PORTAL_ENFORCE_MFA = False
    bulk_secret = f"Bulk-{uuid.uuid4().hex[:16]}"
    single_secret = f"One-{uuid.uuid4().hex[:16]}"
    wrong_secret = f"Wrong-{uuid.uuid4().hex[:16]}"
    directory_user(ALICE)
    directory_user(BOB)
    key = add_key()
    client = Client()
    client.force_login(intune_admin)

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("alice.pfx", pfx_for(ALICE, bulk_secret))
        z.writestr("bob.pfx", pfx_for(BOB, "something-else"))
    manifest = f"filename,upn,password,purpose\nalice.pfx,{ALICE},{bulk_secret},smimeEncryption\nbob.pfx,{BOB},{wrong_secret},\n"
    response = client.post(
        reverse("certs:bulk_import"),
        {
            "pfx_files": [_upload("certs.zip", archive.getvalue())],
            "manifest": _upload("m.csv", manifest.encode()),
            "on_duplicate": "skip",
            "key": key.pk,
        },
    )
    assert response.status_code == 302
    batch = ImportBatch.objects.get()
    wait_for(lambda: ImportBatch.objects.get(pk=batch.pk).state == ImportBatch.State.DONE, timeout=60)
    assert dict(batch.items.values_list("filename", "state")) == {"alice.pfx": "stored", "bob.pfx": "failed"}

    response = client.post(
        reverse("certs:import"),
        {
            "file": _upload("bob.pfx", pfx_for(BOB, single_secret, kind="bob-single")),
            "password": single_secret,
            "upn": BOB,
            "purpose": "smimeSigning",
            "on_duplicate": "skip",
            "key": key.pk,
            "action": "import",
        },
    )
    assert response.status_code == 302
    assert Certificate.objects.count() == 2

    out, err = capfd.readouterr()
    places = {
        "database": database_dump(),
        "sqlite file": sqlite_file(),
        "redis (broker, results, cache)": redis_dump(),
        "broker folder": folder_dump(broker_folder),
        "file cache": folder_dump(Path(settings.DATA_DIR) / "cache") if not settings.REDIS_URL else b"",
        "logs": (out + err + caplog.text).encode(),
    }
    assert places["database"]
    for secret in (bulk_secret, single_secret, wrong_secret):
        for where, content in places.items():
            for form in encodings(secret):
                assert form not in content, f"the password was found in the {where}"


@pytest.mark.parametrize("prefix", [b"", b"x", b"xy", b'{"password": "'])
def test_the_search_finds_a_password_wherever_it_sits_in_a_base64_message(prefix: bytes) -> None:
    secret = "Needle-0123456789"
    message = base64.b64encode(prefix + secret.encode() + b'", "more": 1}')
    assert any(form in message for form in encodings(secret))
    assert any(form in (prefix + secret.encode("utf-16-le")) for form in encodings(secret))
