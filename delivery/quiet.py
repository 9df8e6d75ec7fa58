"""Check-ins that find nothing to do, answered from memory.

Most check-ins change nothing: the device has all it should, or waits for a re-encryption.
After one such check-in, a web process keeps the answer with a fingerprint of everything it
depends on, read in one query: the device's delivery rows (count, last status change, highest
id), its user's certificates (count, last change, highest id), the user's and the device's group
memberships (count, highest id), its key's finished re-encryption jobs (count, last finish),
plus the device and user rows already loaded with the credential and the profile specs in use. The next check-in reads the fingerprint (one query instead of four) and, if nothing moved,
answers the same. Time alone changes a policy too (a certificate becomes valid or expires), so
a kept answer is used for at most ``KEEP_SECONDS``.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import connection

from certs.models import Certificate
from connectors.models import ConnectorJob
from delivery.models import DeliveryState, DeviceCredential
from directory.models import GroupDeviceMember, GroupUserMember

KEEP_SECONDS = 60.0
MAX_KEPT = 200_000

# Credential id -> (fingerprint, the specs it was decided with, monotonic time kept, the answer's
# reason and waiting count). The specs object itself is kept, not its id: a freed object's id can
# come back.
_kept: dict[int, tuple[tuple[Any, ...], object, float, tuple[str, int]]] = {}


def fingerprint(credential: DeviceCredential) -> tuple[Any, ...]:
    device = credential.device
    user = device.primary_user
    q = connection.ops.quote_name
    states, certificates, user_groups, device_groups, jobs = (
        q(m._meta.db_table)
        for m in (DeliveryState, Certificate, GroupUserMember, GroupDeviceMember, ConnectorJob)
    )
    pk, device_id, user_id = q("id"), q("device_id"), q("user_id")
    sql = (
        f"SELECT (SELECT COUNT(*) FROM {states} WHERE {device_id} = %s), "
        f"(SELECT MAX({q('changed_at')}) FROM {states} WHERE {device_id} = %s), "
        f"(SELECT MAX({pk}) FROM {states} WHERE {device_id} = %s), "
        f"(SELECT COUNT(*) FROM {certificates} WHERE {user_id} = %s), "
        f"(SELECT MAX({q('updated_at')}) FROM {certificates} WHERE {user_id} = %s), "
        f"(SELECT MAX({pk}) FROM {certificates} WHERE {user_id} = %s), "
        f"(SELECT COUNT(*) FROM {user_groups} WHERE {user_id} = %s), "
        f"(SELECT MAX({pk}) FROM {user_groups} WHERE {user_id} = %s), "
        f"(SELECT COUNT(*) FROM {device_groups} WHERE {device_id} = %s), "
        f"(SELECT MAX({pk}) FROM {device_groups} WHERE {device_id} = %s), "
        f"(SELECT COUNT(*) FROM {jobs} WHERE {q('to_fingerprint')} = %s AND {q('finished_at')} IS NOT NULL), "
        f"(SELECT MAX({q('finished_at')}) FROM {jobs} WHERE {q('to_fingerprint')} = %s)"
    )
    user_pk = user.pk if user is not None else 0
    with connection.cursor() as cursor:
        cursor.execute(
            sql, [device.pk] * 3 + [user_pk] * 5 + [device.pk] * 2 + [credential.key_fingerprint] * 2
        )
        row = cursor.fetchone()
    return (
        connection.alias,
        credential.key_fingerprint,
        device.updated_at,
        device.platform,
        device.os_version_key,
        device.os_edition,
        device.primary_user_id,
        user.removed_at if user is not None else None,
        *(str(value) for value in row),
    )


def kept(credential: DeviceCredential, key: tuple[Any, ...], specs: object) -> tuple[str, int] | None:
    """The kept answer's reason (often "") and waiting count, or None when there is none to use."""
    found = _kept.get(credential.pk)
    if (
        found is None
        or found[0] != key
        or found[1] is not specs
        or time.monotonic() - found[2] > KEEP_SECONDS
    ):
        return None
    return found[3]


def keep(credential: DeviceCredential, key: tuple[Any, ...], specs: object, answer: tuple[str, int]) -> None:
    if len(_kept) >= MAX_KEPT:
        _kept.clear()
    _kept[credential.pk] = (key, specs, time.monotonic(), answer)


def forget() -> None:
    """Drop every kept answer (tests whose data is rolled back between them)."""
    _kept.clear()
