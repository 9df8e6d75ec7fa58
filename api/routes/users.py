"""One directory user: their certificates and what their devices reported."""

from __future__ import annotations

from django.db.models import Q
from django.db.models.functions import Lower
from django.http import Http404, HttpRequest
from ninja import Router

from api.auth import needs
from api.common import ERRORS, user
from api.routes.certificates import certificate_out, certificate_rows
from api.schemas import DeviceStateOut, UserOut
from certs.models import Certificate
from delivery.models import DeliveryState
from directory.models import DirectoryUser
from portal import access
from profiles.models import Profile

router = Router(tags=["Users"])

MAX_ROWS = 500


@router.get(
    "/users/{upn}",
    response={200: UserOut, **ERRORS},
    summary="A user's certificates and device states",
    auth=needs("directory.read"),
)
def user_get(request: HttpRequest, upn: str) -> UserOut:
    admin = user(request)
    found = (
        DirectoryUser.objects.annotate(upn_lower=Lower("upn"))
        .filter(upn_lower=upn.strip().lower(), removed_at__isnull=True)
        .first()
    )
    if found is None:
        raise Http404
    certificates = certificate_rows(access.scoped(Certificate.objects.filter(user=found), admin))
    states = (
        DeliveryState.objects.filter(Q(user=found) | Q(user__isnull=True, device__primary_user=found))
        .filter(profile__in=access.scoped(Profile.objects.all(), admin).values("pk"))
        .select_related("device", "profile")
        .order_by("device__name", "profile__name", "pk")
    )
    return UserOut(
        object_id=found.object_id,
        upn=found.upn,
        display_name=found.display_name,
        mail=found.mail,
        account_enabled=found.account_enabled,
        certificates=[certificate_out(c) for c in certificates.order_by("-not_after", "pk")[:MAX_ROWS]],
        device_states=[
            DeviceStateOut(
                device_id=s.device.device_id,
                device_name=s.device.name,
                platform=s.device.platform,
                profile=s.profile.code,
                profile_name=s.profile.name,
                status=s.status,
                error_code=s.error_code,
                error_message=s.error_message,
                source=s.source,
                certificate_thumbprint=s.certificate_thumbprint,
                changed_at=s.changed_at,
                reported_at=s.reported_at,
            )
            for s in states[:MAX_ROWS]
        ],
    )
