"""Admin actions on delivery: resend to one device, retry a profile's failed devices."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from connectors.models import ConnectorJob
from delivery.credentials import CATEGORY
from delivery.models import DeliveryState, Source
from directory.models import Device
from portal import audit
from portal.audit import Actor
from profiles.models import DeliveryStatus, Profile


def _again(
    actor: Actor, rows: QuerySet[DeliveryState], *, activity: str, resources: list[dict[str, object]]
) -> int:
    """Rows back to Pending, to be sent at the next check-in; their failed jobs queued again."""
    now = timezone.now()
    # Intune's rows say what Intune delivered: only this portal's own deliveries are sent again.
    chosen = list(
        rows.filter(source=Source.PORTAL).exclude(certificate_thumbprint="").values_list("pk", "job_id")
    )
    if not chosen:
        return 0
    ConnectorJob.objects.filter(
        pk__in=[job for _pk, job in chosen if job], state=ConnectorJob.State.FAILED
    ).update(
        state=ConnectorJob.State.QUEUED,
        attempts=0,
        error="",
        claimed_by=None,
        claimed_at=None,
        finished_at=None,
    )
    count = DeliveryState.objects.filter(pk__in=[pk for pk, _job in chosen]).update(
        status=DeliveryStatus.PENDING, error_code="", error_message="", sent_at=None, changed_at=now
    )
    audit.record(actor, activity=activity, category=CATEGORY, operation="action", resources=resources)
    return count


@transaction.atomic
def device_resend(actor: Actor, device: Device, *, profile: Profile | None = None) -> int:
    """Send the device its certificates again (all, or one profile's) at its next check-in."""
    rows = DeliveryState.objects.filter(
        device=device, status__in=[DeliveryStatus.SUCCEEDED, DeliveryStatus.ERROR, DeliveryStatus.PENDING]
    )
    if profile is not None:
        rows = rows.filter(profile=profile)
    resources = [audit.resource(type="Device", id=str(device.device_id), name=device.name, scope=Device)]
    if profile is not None:
        resources.append(audit.resource(profile, type="Profile"))
    return _again(actor, rows, activity="Resend certificates to device", resources=resources)


@transaction.atomic
def profile_retry_failed(actor: Actor, profile: Profile) -> int:
    """Every device in Error for this profile gets its certificates again at its next check-in."""
    rows = DeliveryState.objects.filter(Q(profile=profile), Q(status=DeliveryStatus.ERROR))
    return _again(
        actor, rows, activity="Retry failed devices", resources=[audit.resource(profile, type="Profile")]
    )
