"""One directory user: their certificates and what their devices reported.

Read as column values in three queries compiled once per caller's scope (portal.lib.shapes) and
written as the ``UserOut`` schema writes them, byte for byte (api/tests/test_api_users.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Router

from api import render
from api.auth import needs
from api.columns import SchemaTimeText, TimeText, UuidText
from api.common import ERRORS, user
from api.routes.certificates import COLUMNS as CERTIFICATE_COLUMNS
from api.schemas import UserOut
from certs.models import Certificate
from delivery.models import DeliveryState
from directory.models import DirectoryUser
from portal import access
from portal.lib.shapes import Shapes
from profiles.models import Profile

router = Router(tags=["Users"])

MAX_ROWS = 500

USER_FIELDS = ("object_id", "upn", "display_name", "mail", "account_enabled")
USER_ROWS = DirectoryUser.objects.alias(upn_lower=Lower("upn")).order_by("pk")
USER_VALUES = ("pk", UuidText("object_id"), "upn", "display_name", "mail", "account_enabled")

# CertificateOut's fields, with times as the schema writes them.
CERTIFICATE_FIELDS = tuple(CERTIFICATE_COLUMNS)
CERTIFICATE_VALUES = tuple(
    SchemaTimeText(*c.source_expressions) if isinstance(c, TimeText) else c
    for c in CERTIFICATE_COLUMNS.values()
)

STATE_FIELDS = (
    "device_id",
    "device_name",
    "platform",
    "profile",
    "profile_name",
    "status",
    "error_code",
    "error_message",
    "source",
    "certificate_thumbprint",
    "changed_at",
    "reported_at",
)
STATE_VALUES = (
    UuidText("device__device_id"),
    "device__name",
    "device__platform",
    UuidText("profile__code"),
    "profile__name",
    "status",
    "error_code",
    "error_message",
    "source",
    "certificate_thumbprint",
    SchemaTimeText("changed_at"),
    SchemaTimeText("reported_at"),
)

USERS = Shapes("api.users")
CERTIFICATES = Shapes("api.users.certificates")
STATES = Shapes("api.users.states")


@router.get(
    "/users/{upn}",
    response={200: UserOut, **ERRORS},
    summary="A user's certificates and device states",
    auth=needs("directory.read"),
)
def user_get(request: HttpRequest, upn: str) -> HttpResponse:
    admin = user(request)
    found = USERS.rows(
        None,
        lambda v: USER_ROWS.filter(upn_lower=v["upn"], removed_at__isnull=True).values_list(*USER_VALUES)[:1],
        {"upn": upn.strip().lower()},
    )
    if not found:
        raise Http404
    pk, *person = found[0]
    scope = access.viewer_key(admin)

    def certificates(v: Mapping[str, Any]) -> QuerySet[Any]:
        rows = access.scoped(Certificate.objects.filter(user_id=v["user"]), admin)
        return rows.order_by("-not_after", "pk").values_list(*CERTIFICATE_VALUES)[:MAX_ROWS]

    def states(v: Mapping[str, Any]) -> QuerySet[Any]:
        rows = DeliveryState.objects.filter(
            Q(user_id=v["user"]) | Q(user__isnull=True, device__primary_user_id=v["user"])
        ).filter(profile__in=access.scoped(Profile.objects.all(), admin).values("pk"))
        return rows.order_by("device__name", "profile__name", "pk").values_list(*STATE_VALUES)[:MAX_ROWS]

    body = dict(zip(USER_FIELDS, person, strict=True))
    body["account_enabled"] = bool(body["account_enabled"])
    body["certificates"] = render.rows(
        CERTIFICATE_FIELDS, CERTIFICATES.rows(scope, certificates, {"user": pk})
    )
    body["device_states"] = render.rows(STATE_FIELDS, STATES.rows(scope, states, {"user": pk}))
    return render.schema_answer(body)
