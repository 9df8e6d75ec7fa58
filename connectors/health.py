"""Read-side helpers: connector health at a glance and which connectors hold each key.

``summary_for(user)`` feeds the Home tile; ``key_holders(keys)`` feeds the
encryption-keys page (``templates/connectors/_key_holders.html``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Count
from django.utils import timezone

from certs.models import Certificate, EncryptionKey
from connectors.models import Connector, ConnectorKey, Status
from portal import access
from portal.access import AnyUser


def summary_for(user: AnyUser) -> dict[str, int] | None:
    """Counts per status of the connectors the admin may read; ``None`` without the permission."""
    if not access.has_perm(user, "connectors.read"):
        return None
    now = timezone.now()
    counts = Counter(c.status(now) for c in access.scoped(Connector.objects.all(), user))
    return {status: counts.get(status, 0) for status in Status.values} | {"total": sum(counts.values())}


@dataclass
class KeyHolding:
    key: EncryptionKey
    holders: list[Connector] = field(default_factory=list)
    healthy_holders: int = 0
    certificates: int = 0
    warnings: list[str] = field(default_factory=list)


def key_holders(keys: Iterable[EncryptionKey]) -> list[KeyHolding]:
    """Each key with the connectors holding it, and the warnings an admin must see."""
    keys = list(keys)
    now = timezone.now()
    active = list(Connector.objects.filter(state=Connector.State.ACTIVE).prefetch_related("keys"))
    by_fingerprint: dict[str, list[Connector]] = {}
    for held in ConnectorKey.objects.filter(connector__in=active).select_related("connector"):
        by_fingerprint.setdefault(held.fingerprint, []).append(held.connector)
    used = Counter(
        dict(
            Certificate.objects.filter(encryption_key__in=keys)
            .values_list("encryption_key_id")
            .annotate(n=Count("id"))
            .values_list("encryption_key_id", "n")
        )
    )
    rows = []
    for key in keys:
        holders = by_fingerprint.get(key.fingerprint, [])
        row = KeyHolding(key=key, holders=holders, certificates=used.get(key.pk, 0))
        row.healthy_holders = sum(1 for c in holders if c.status(now) == Status.HEALTHY)
        if row.certificates and not row.healthy_holders:
            row.warnings.append(
                f"{row.certificates} certificate(s) use this key, but no healthy connector holds it: "
                "Intune cannot deliver them."
            )
        missing = [c.name for c in active if c not in holders]
        if row.certificates and holders and missing:
            row.warnings.append(
                "Active connectors disagree: " + ", ".join(missing) + " do(es) not hold this key, "
                "and Intune may hand any request to any connector."
            )
        rows.append(row)
    return rows
