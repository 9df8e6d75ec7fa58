"""A user's answer, written from column values, is byte for byte what its schema writes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from django.utils import timezone
from ninja.responses import NinjaJSONEncoder

from api.schemas import CertificateOut, DeviceStateOut, UserOut
from api.tests.conftest import ApiClient
from certs.models import Certificate
from certs.tests.importing import stored_certificate
from delivery.models import DeliveryState
from directory.models import DirectoryUser
from portal.models import ScopeTag, User
from profiles.models import DeliveryStatus, Profile
from profiles.tests import factories as f

pytestmark = pytest.mark.django_db


def _schema_bytes(
    person: DirectoryUser, certificates: list[Certificate], states: list[DeliveryState]
) -> bytes:
    """What django-ninja writes for these objects through ``UserOut``."""
    body = UserOut(
        object_id=person.object_id,
        upn=person.upn,
        display_name=person.display_name,
        mail=person.mail,
        account_enabled=person.account_enabled,
        certificates=[
            CertificateOut(
                code=c.code,
                upn=c.upn,
                user_object_id=c.user.object_id,
                thumbprint=c.thumbprint,
                purpose=c.purpose,
                subject=c.subject,
                issuer=c.issuer,
                serial=c.serial,
                not_before=c.not_before,
                not_after=c.not_after,
                key_type=c.key_type,
                key_size=c.key_size,
                encryption_key=c.encryption_key.code,
                padding=c.padding,
                import_batch=c.batch.code if c.batch else None,
                intune_state=c.graph_state,
                intune_error=c.graph_error,
                created_at=c.created_at,
            )
            for c in certificates
        ],
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
            for s in states
        ],
    )
    return json.dumps(body.model_dump(), cls=NinjaJSONEncoder).encode()


def test_a_users_answer_is_what_its_schema_writes_byte_for_byte(
    intune_admin: User, api_as: Callable[..., ApiClient]
) -> None:
    newer = stored_certificate()
    person = newer.user
    older = Certificate.objects.create(
        user=person,
        upn=person.upn,
        thumbprint="ab" * 20,
        purpose="smimeSigning",
        subject="CN=Alice",
        issuer="CN=Contoso CA",
        serial="01",
        not_before=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        not_after=datetime(2025, 6, 7, 8, 9, 10, 123456, tzinfo=UTC),
        key_type="rsa",
        key_size=2048,
        encryption_key=newer.encryption_key,
        padding=newer.padding,
        pfx_blob=b"x",
        encrypted_password=b"x",
    )
    older.scope_tags.set([ScopeTag.default()])
    laptop, phone = f.device("LAPTOP", person), f.device("PHONE", person, platform="iOS")
    mail = f.profile("Mail")
    DeliveryState.objects.create(
        profile=mail,
        device=laptop,
        user=person,
        status=DeliveryStatus.SUCCEEDED,
        certificate_thumbprint=newer.thumbprint,
        changed_at=datetime(2026, 3, 4, 5, 6, 7, 999, tzinfo=UTC),
        reported_at=timezone.now(),
    )
    # A device's state with no user of its own is its primary user's.
    DeliveryState.objects.create(profile=mail, device=phone, status=DeliveryStatus.ERROR, error_code="x")

    answer = api_as(intune_admin).get(f"/users/{person.upn.upper()}")

    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/json; charset=utf-8"
    states = list(DeliveryState.objects.order_by("device__name", "profile__name", "pk"))
    assert len(answer.json()["device_states"]) == 2
    assert answer.content == _schema_bytes(person, [newer, older], states)


def test_a_user_shows_only_the_states_of_profiles_the_caller_may_see(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag], api_as: Callable[..., ApiClient]
) -> None:
    europe, asia = make_tag("Europe"), make_tag("Asia")
    person = f.user("bob@contoso.example")
    seen, hidden = f.profile("Seen"), f.profile("Hidden")
    seen.scope_tags.set([europe])
    hidden.scope_tags.set([asia])
    laptop = f.device("LAPTOP", person)
    for profile in (seen, hidden):
        DeliveryState.objects.create(profile=profile, device=laptop, user=person)
    caller = make_admin("help_desk_operator", tags=[europe])

    answer = api_as(caller).get("/users/bob@contoso.example")

    assert answer.status_code == 200
    assert [s["profile_name"] for s in answer.json()["device_states"]] == ["Seen"]
    assert Profile.objects.count() == 2


def test_a_removed_user_is_not_found(intune_admin: User, api_as: Callable[..., ApiClient]) -> None:
    f.user("gone@contoso.example")
    DirectoryUser.objects.filter(upn="gone@contoso.example").update(removed_at=timezone.now())

    answer = api_as(intune_admin).get("/users/gone@contoso.example")

    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"
