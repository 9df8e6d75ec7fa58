"""What admins do with delivery states: retry a profile's failed devices, resend to one device.

Both put rows back to Pending with nothing sent, so the device's next check-in hands it the
certificate again; a re-encryption job that had failed is queued again (its attempts reset).
Each call is one transaction with its audit event, and changes nothing when no row qualifies.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from connectors.models import ConnectorJob
from delivery.credentials import CATEGORY
from delivery.models import DeliveryState, Source
from directory.models import Device
from portal import audit
from portal.audit import Actor
from profiles.models import DeliveryStatus, Profile

# Rows a resend sends again: those a device holds or should hold (not ones being removed).
RESENDABLE = (DeliveryStatus.SUCCEEDED, DeliveryStatus.ERROR, DeliveryStatus.PENDING)


def _send_again(rows: QuerySet[DeliveryState]) -> tuple[int, list[int]]:
    """Rows back to Pending and unsent, their failed jobs queued again; (rows changed, profile ids)."""
    # Intune's rows say what Intune delivered: only this portal's own deliveries are sent again.
    rows = rows.filter(source=Source.PORTAL)
    chosen = list(rows.exclude(certificate_thumbprint="").values_list("pk", "job_id", "profile_id"))
    if not chosen:
        return 0, []
    ConnectorJob.objects.filter(
        pk__in={job for _pk, job, _p in chosen if job}, state=ConnectorJob.State.FAILED
    ).update(
        state=ConnectorJob.State.QUEUED,
        attempts=0,
        error="",
        claimed_by=None,
        claimed_at=None,
        finished_at=None,
    )
    now = timezone.now()
    # updated_at by hand (update() does not stamp it): the user page's pieces key on it.
    changed = DeliveryState.objects.filter(pk__in=[pk for pk, _job, _p in chosen]).update(
        status=DeliveryStatus.PENDING,
        error_code="",
        error_message="",
        sent_at=None,
        changed_at=now,
        updated_at=now,
    )
    return changed, sorted({profile_id for _pk, _job, profile_id in chosen})


@transaction.atomic
def retry_failed(actor: Actor, profile: Profile) -> int:
    """Every certificate of ``profile`` in Error on a device is sent again at that device's next check-in."""
    rows = DeliveryState.objects.select_for_update().filter(profile=profile, status=DeliveryStatus.ERROR)
    changed, _profiles = _send_again(rows)
    if changed:
        audit.record(
            actor,
            activity="Retry failed devices",
            category=CATEGORY,
            operation="action",
            resources=[
                audit.resource(
                    profile,
                    type="Profile",
                    changes=[{"field": "failed_certificates_sent_again", "old": None, "new": changed}],
                )
            ],
        )
    return changed


@transaction.atomic
def resend(actor: Actor, device: Device, profiles: Iterable[Profile]) -> int:
    """The device's certificates of ``profiles`` (those the admin may resend) are sent again at its next check-in."""
    chosen = {profile.pk: profile for profile in profiles}
    rows = DeliveryState.objects.select_for_update().filter(
        device=device, profile_id__in=list(chosen), status__in=RESENDABLE
    )
    changed, touched = _send_again(rows)
    if changed:
        device_resource = audit.resource(
            type="Device",
            id=str(device.device_id),
            name=device.name,
            changes=[{"field": "certificates_sent_again", "old": None, "new": changed}],
        )
        audit.record(
            actor,
            activity="Resend certificates to device",
            category=CATEGORY,
            operation="action",
            resources=[device_resource, *(audit.resource(chosen[pk], type="Profile") for pk in touched)],
        )
    return changed
