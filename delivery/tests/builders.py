"""Rows of the status table and what they name, built directly (the delivery loop is tested elsewhere)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from itertools import count

from django.utils import timezone

from certs.models import Certificate, EncryptionKey, Padding
from certs.tests.importing import add_key
from connectors.models import ConnectorJob
from delivery.models import DeliveryState
from directory.models import Device, DirectoryUser, Platform
from portal.models import ScopeTag
from profiles.models import DeliveryStatus, Profile
from profiles.tests import factories as f

_serials = count(1)


def key() -> EncryptionKey:
    return EncryptionKey.objects.first() or add_key()


def certificate(user: DirectoryUser, *, days_left: int = 300) -> Certificate:
    n = next(_serials)
    now = timezone.now()
    cert = Certificate.objects.create(
        user=user,
        upn=user.upn,
        thumbprint=hashlib.sha1(f"certificate {n}".encode()).hexdigest(),
        subject=f"CN={user.display_name}, E={user.upn}",
        issuer="CN=Contoso Issuing CA 01",
        serial=f"5a{n:06x}",
        not_before=now - timedelta(days=400),
        not_after=now + timedelta(days=days_left),
        key_type="rsa",
        key_size=2048,
        encryption_key=key(),
        padding=Padding.OAEP_SHA512,
        pfx_blob=b"\x30\x82",
        encrypted_password=b"\x00",
    )
    cert.scope_tags.set([ScopeTag.default()])
    return cert


def profile(name: str, *tags: ScopeTag, platform: str = Platform.WINDOWS) -> Profile:
    made = f.profile(name, platform=platform)
    made.scope_tags.set(list(tags) or [ScopeTag.default()])
    return made


def state(
    profile: Profile,
    device: Device,
    cert: Certificate | None,
    status: str = DeliveryStatus.SUCCEEDED,
    *,
    code: str = "",
    message: str = "",
    job: ConnectorJob | None = None,
) -> DeliveryState:
    return DeliveryState.objects.create(
        profile=profile,
        device=device,
        user=device.primary_user,
        certificate=cert,
        certificate_thumbprint=cert.thumbprint if cert else "",
        status=status,
        error_code=code,
        error_message=message,
        job=job,
        sent_at=timezone.now() if status != DeliveryStatus.PENDING else None,
    )


def failed_job(cert: Certificate) -> ConnectorJob:
    return ConnectorJob.objects.create(
        kind=ConnectorJob.Kind.DEVICE,
        certificate_id=cert.pk,
        from_fingerprint="ab" * 32,
        to_fingerprint=f"{cert.pk:064x}",
        state=ConnectorJob.State.FAILED,
        attempts=3,
        error="key_not_held",
        finished_at=timezone.now(),
    )
