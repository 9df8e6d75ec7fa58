"""Check-ins that find nothing to do, answered from the shared cache.

Most check-ins change nothing: the device has all it should, or waits for a re-encryption.
After one such check-in the answer is kept with a fingerprint of everything it depends on, read
in one query: the device's delivery rows (count, last status change, highest id), its user's
certificates (count, last change, highest id), the user's and the device's group memberships
(count, highest id), its key's finished re-encryption jobs (count, last finish), plus the device
and user rows loaded with the credential and the version of the profile specs in use. The next
check-in, in any web process, reads the fingerprint (one query instead of four) and, if nothing
moved, answers the same. Time alone changes a policy too (a certificate becomes valid or
expires), so a kept answer is used for at most ``KEEP_SECONDS``.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db import connection

from certs.models import Certificate
from connectors.models import ConnectorJob
from delivery.models import DeliveryState, DeviceCredential
from directory.models import GroupDeviceMember, GroupUserMember
from profiles.specs import ProfileSpecs, tenant_specs_version

KEEP_SECONDS = 60
# Bumped by forget(): answers kept under an earlier generation are never read again.
_generation = 0


def fingerprint(credential: DeviceCredential, specs: ProfileSpecs) -> tuple[Any, ...] | None:
    """None when the specs in use are not the kept ones (nothing to compare with)."""
    version = tenant_specs_version(specs)
    if version is None:
        return None
    device = credential.device
    user = device.primary_user
    q = connection.ops.quote_name
    states, certificates, user_groups, device_groups, jobs = (
        q(m._meta.db_table)
        for m in (DeliveryState, Certificate, GroupUserMember, GroupDeviceMember, ConnectorJob)
    )
    pk, device_id, user_id = q("id"), q("device_id"), q("user_id")
    # One aggregate scan per table (five, not twelve subqueries): PostgreSQL plans this query on
    # every check-in, and planning twelve subqueries cost more than running them.
    sql = (
        f"SELECT s.n, s.changed, s.top, c.n, c.changed, c.top, ug.n, ug.top, dg.n, dg.top, j.n, j.changed "
        f"FROM (SELECT COUNT(*) AS n, MAX({q('changed_at')}) AS changed, MAX({pk}) AS top "
        f"FROM {states} WHERE {device_id} = %s) s, "
        f"(SELECT COUNT(*) AS n, MAX({q('updated_at')}) AS changed, MAX({pk}) AS top "
        f"FROM {certificates} WHERE {user_id} = %s) c, "
        f"(SELECT COUNT(*) AS n, MAX({pk}) AS top FROM {user_groups} WHERE {user_id} = %s) ug, "
        f"(SELECT COUNT(*) AS n, MAX({pk}) AS top FROM {device_groups} WHERE {device_id} = %s) dg, "
        f"(SELECT COUNT({q('finished_at')}) AS n, MAX({q('finished_at')}) AS changed "
        f"FROM {jobs} WHERE {q('to_fingerprint')} = %s) j"
    )
    user_pk = user.pk if user is not None else 0
    with connection.cursor() as cursor:
        cursor.execute(sql, [device.pk, user_pk, user_pk, device.pk, credential.key_fingerprint])
        row = cursor.fetchone()
    return (
        version,
        credential.key_fingerprint,
        device.updated_at,
        device.platform,
        device.os_version_key,
        device.os_edition,
        device.primary_user_id,
        user.removed_at if user is not None else None,
        *(str(value) for value in row),
    )


def _key(credential: DeviceCredential) -> str:
    return f"device-quiet:{_generation}:{credential.pk}"


def kept(credential: DeviceCredential, key: tuple[Any, ...]) -> tuple[str, int] | None:
    """The kept answer's reason (often "") and waiting count, or None when there is none to use.

    Answers are kept in the shared cache, so every web process uses what any of them decided."""
    found = cache.get(_key(credential))
    if not isinstance(found, tuple) or len(found) != 2 or found[0] != key:
        return None
    answer: tuple[str, int] = found[1]
    return answer


def keep(credential: DeviceCredential, key: tuple[Any, ...], answer: tuple[str, int]) -> None:
    cache.set(_key(credential), (key, answer), timeout=KEEP_SECONDS)


def forget() -> None:
    """Drop every kept answer (tests whose data is rolled back between them)."""
    global _generation
    _generation += 1
