"""Certificates one at a time: import a file now (with its live check first), delete, remove expired ones.

Apps above certs act on these through ``certs.signals`` (a deleted certificate's copy in Intune goes too).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from django.db import transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from certs.imports import Entry
from certs.keys import public_key
from certs.models import Certificate, EncryptionKey, ImportBatch, ImportItem
from certs.pfx import Inspection, Problem, inspect_pfx
from certs.pipeline import CERTIFICATES, certificate_audit_name, key_conflict, key_holders, process_items
from certs.signals import certificate_deleting
from directory.models import DirectoryUser
from portal import audit
from portal.audit import Actor
from portal.lib.refusal import Refused
from portal.models import AuditEvent, ScopeTag


def certificate_import(
    actor: Actor,
    *,
    entry: Entry,
    key: EncryptionKey,
    tags: Sequence[ScopeTag],
    on_duplicate: str = ImportBatch.OnDuplicate.SKIP,
) -> ImportItem:
    """Import one file now, in this process: the password never leaves the request's memory."""
    with transaction.atomic():
        batch = ImportBatch.objects.create(
            kind=ImportBatch.Kind.SINGLE,
            on_duplicate=on_duplicate,
            encryption_key=key,
            padding=key.default_padding,
            total=1,
            created_by=actor.user,
            created_by_name=actor.name[:254],
        )
        batch.scope_tags.set(tags)
        item = ImportItem.objects.create(
            batch=batch,
            position=0,
            filename=entry.filename[:255],
            upn=entry.upn.strip(),
            purpose=entry.purpose,
            pfx=entry.data,
            claim=uuid.uuid4(),
            claimed_at=timezone.now(),
        )
    process_items(batch, [item], {item.pk: entry.password})
    item.refresh_from_db()
    return item


@dataclass(frozen=True)
class Preview:
    """The live check of the single import: what the engine finds, and what Import would then do."""

    inspection: Inspection
    # "import" (a new certificate), "update" or "skip" (already imported), "refused" (an error)
    outcome: str
    existing: Certificate | None = None

    @property
    def ok(self) -> bool:
        return self.inspection.ok


def preview(
    entry: Entry,
    key: EncryptionKey,
    padding: str | None = None,
    *,
    user: DirectoryUser | None = None,
    on_duplicate: str = ImportBatch.OnDuplicate.SKIP,
) -> Preview:
    """What the engine says about a file before anything is stored, and (given the user) whether
    another user holds its key and whether it is already imported."""
    inspection = inspect_pfx(
        entry.data,
        entry.password,
        upn=entry.upn or None,
        purpose=entry.purpose,
        public_key=public_key(key.public_key_pem),
        padding=padding or key.default_padding,
    )
    if user is not None and inspection.key_fingerprint:
        holders = key_holders([inspection.key_fingerprint])
        if detail := key_conflict(inspection.key_fingerprint, user, holders):
            problem = Problem.of("key_held_by_other_user", detail)
            inspection = replace(inspection, ok=False, problems=(problem, *inspection.problems))
    if not inspection.ok:
        return Preview(inspection, "refused")
    existing = None
    if user is not None:
        existing = (
            Certificate.objects.annotate(upn_lower=Lower("upn"))
            .filter(upn_lower=user.upn.lower(), thumbprint=inspection.thumbprint, purpose=entry.purpose)
            .defer("pfx_blob", "encrypted_password")
            .first()
        )
    if existing is None:
        return Preview(inspection, "import")
    return Preview(inspection, "skip" if on_duplicate == ImportBatch.OnDuplicate.SKIP else "update", existing)


@transaction.atomic
def certificate_delete(actor: Actor, *, certificate: Certificate) -> None:
    resource = audit.resource(
        certificate,
        type="Certificate",
        name=f"{certificate.upn} {certificate.thumbprint} ({certificate.purpose})",
        changes=[{"field": "not_after", "old": certificate.not_after.isoformat(), "new": None}],
    )
    # Apps above certs act on it first: its copy in Intune goes too, after this transaction commits.
    certificate_deleting.send(Certificate, certificate=certificate)
    certificate.delete()
    audit.record(
        actor,
        activity="Delete certificate",
        category=CERTIFICATES,
        operation=AuditEvent.Operation.DELETE,
        resources=[resource],
    )


@transaction.atomic
def remove_expired(actor: Actor, *, certificates: QuerySet[Certificate]) -> int:
    """Delete the given certificates that have expired (valid ones are never touched here)."""
    expired = list(certificates.filter(not_after__lte=timezone.now()).select_for_update())
    if not expired:
        raise Refused("nothing_expired", "None of the selected certificates has expired.")
    resources = audit.resources(expired, type="Certificate", name=certificate_audit_name)
    for certificate in expired:
        certificate_deleting.send(Certificate, certificate=certificate)
    Certificate.objects.filter(pk__in=[c.pk for c in expired]).delete()
    audit.record(
        actor,
        activity="Remove expired certificates",
        category=CERTIFICATES,
        operation=AuditEvent.Operation.DELETE,
        resources=resources,
    )
    return len(expired)
