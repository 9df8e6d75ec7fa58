"""Mark the encryption keys a connector has already proven it holds.

A connector publishes a key only with a signature made by its private key, and the
portal keeps a ``ConnectorKey`` row for each accepted publication; a key whose source
is "connector" was added by such a publication (even if its connector was deleted since).
Keys uploaded by hand stay unproven.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations
from django.db.models import Min


def backfill(apps: Any, schema_editor: Any) -> None:
    EncryptionKey = apps.get_model("certs", "EncryptionKey")
    ConnectorKey = apps.get_model("connectors", "ConnectorKey")
    first_proof = dict(
        ConnectorKey.objects.values_list("fingerprint").annotate(first=Min("published_at"))
    )
    for key in EncryptionKey.objects.filter(possession_proven_at__isnull=True):
        proven_at = first_proof.get(key.fingerprint)
        if proven_at is None and key.source == "connector":
            proven_at = key.created_at
        if proven_at is not None:
            EncryptionKey.objects.filter(pk=key.pk).update(possession_proven_at=proven_at)


class Migration(migrations.Migration):
    dependencies = [
        ("connectors", "0001_connectors_keys_jobs_health"),
        ("certs", "0004_encryption_key_possession_proven"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
