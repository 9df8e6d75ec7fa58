"""What the list answers carry, value by value: they are written from column values, not schemas."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from api.schemas import ProfileOut
from api.tests.conftest import ApiClient
from certs.models import Certificate
from certs.tests.importing import stored_certificate
from directory.models import Group
from portal.audit import Actor
from portal.models import AuditEvent, ScopeTag, User
from profiles import services as profile_services

pytestmark = pytest.mark.django_db


def test_a_listed_certificate_shows_its_codes_as_text_and_its_times_in_iso_8601(
    intune_admin: User, api_as: Callable[..., ApiClient]
) -> None:
    certificate = stored_certificate()
    answer = api_as(intune_admin).get("/certificates")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/json"
    [item] = answer.json()["items"]
    assert answer.json()["next_cursor"] is None
    batch = certificate.batch
    assert batch is not None
    assert item == {
        "code": str(certificate.code),
        "upn": certificate.upn,
        "user_object_id": str(certificate.user.object_id),
        "thumbprint": certificate.thumbprint,
        "purpose": "smimeEncryption",
        "subject": certificate.subject,
        "issuer": certificate.issuer,
        "serial": certificate.serial,
        "not_before": certificate.not_before.isoformat(),
        "not_after": certificate.not_after.isoformat(),
        "key_type": certificate.key_type,
        "key_size": certificate.key_size,
        "encryption_key": str(certificate.encryption_key.code),
        "padding": certificate.padding,
        "import_batch": str(batch.code),
        "intune_state": certificate.graph_state,
        "intune_error": certificate.graph_error,
        "created_at": certificate.created_at.isoformat(),
    }


def test_a_time_on_the_second_lists_without_a_fraction_and_no_import_batch_lists_as_null(
    intune_admin: User, api_as: Callable[..., ApiClient]
) -> None:
    certificate = stored_certificate()
    on_the_second = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    Certificate.objects.filter(pk=certificate.pk).update(not_before=on_the_second, batch=None)
    [item] = api_as(intune_admin).get("/certificates").json()["items"]
    assert item["not_before"] == "2026-01-02T03:04:05+00:00" == on_the_second.isoformat()
    assert item["import_batch"] is None


def test_a_listed_profile_shows_its_groups_and_tags_with_codes_as_text(
    intune_admin: User, api_as: Callable[..., ApiClient]
) -> None:
    sales, interns = Group.objects.create(display_name="Sales"), Group.objects.create(display_name="Interns")
    draft = profile_services.ProfileDraft(
        platform="iOS",
        name="Mail",
        intended_purpose="smimeEncryption",
        scope_tags=(ScopeTag.default(),),
        include_groups=(sales,),
        exclude_groups=(interns,),
    )
    profile = profile_services.profile_create(actor=Actor.system(), draft=draft)
    [item] = api_as(intune_admin).get("/profiles").json()
    assert item["code"] == str(profile.code)
    assert item["created_at"] == profile.created_at.isoformat()
    assert item["include_groups"] == [{"object_id": str(sales.object_id), "display_name": "Sales"}]
    assert item["exclude_groups"] == [{"object_id": str(interns.object_id), "display_name": "Interns"}]
    assert item["scope_tags"] == [ScopeTag.default().name]
    assert item["silent_access_packages"] == []


def test_a_listed_profile_shows_its_flags_packages_and_groups_in_name_order(
    intune_admin: User, api_as: Callable[..., ApiClient]
) -> None:
    groups = [Group.objects.create(display_name=name) for name in ("Zulu", "Alpha", "Mike")]
    draft = profile_services.ProfileDraft(
        platform="androidEnterpriseFullyManaged",
        name="Mail",
        intended_purpose="smimeEncryption",
        certificate_access="specificApps",
        silent_access_packages=("com.contoso.mail", "com.contoso.chat"),
        scope_tags=(ScopeTag.default(),),
        all_users=True,
        include_groups=tuple(groups),
    )
    profile = profile_services.profile_create(actor=Actor.system(), draft=draft)
    client = api_as(intune_admin)
    [item] = client.get("/profiles").json()
    assert item == client.get(f"/profiles/{profile.code}").json()
    assert (item["all_users"], item["all_devices"]) == (True, False)
    assert item["silent_access_packages"] == ["com.contoso.mail", "com.contoso.chat"]
    assert [g["display_name"] for g in item["include_groups"]] == ["Alpha", "Mike", "Zulu"]
    assert item["exclude_groups"] == []
    shown_first = list(ProfileOut.model_fields)[:11]
    assert list(item) == [
        *shown_first,
        "created_at",
        "updated_at",
        "include_groups",
        "exclude_groups",
        "scope_tags",
    ]


def test_a_listed_audit_event_shows_its_codes_as_text_and_its_time_in_iso_8601(
    intune_admin: User, api_as: Callable[..., ApiClient]
) -> None:
    client = api_as(intune_admin)
    event = AuditEvent.objects.order_by("-pk").first()
    assert event is not None
    items = client.get("/audit-events", category=event.category).json()["items"]
    listed = next(i for i in items if i["code"] == str(event.code))
    assert listed["occurred_at"] == event.occurred_at.isoformat()
    assert listed["correlation_id"] == str(event.correlation_id)
    assert listed["resources"] == event.resources[:3]
    assert listed["resource_count"] == len(event.resources)
    assert client.get(f"/audit-events/{event.code}").json() == {
        **listed,
        "resources": event.resources,
    }


def test_certificates_are_listed_oldest_first_one_page_after_another(
    intune_admin: User, api_as: Callable[..., ApiClient]
) -> None:
    first = stored_certificate("ann@contoso.example")
    second = Certificate.objects.get(pk=first.pk)
    second.pk, second.code, second.upn, second.thumbprint = (
        None,
        uuid.uuid4(),
        "bob@contoso.example",
        "b" * 40,
    )
    second.save()
    client = api_as(intune_admin)
    page = client.get("/certificates", limit=1).json()
    assert [i["code"] for i in page["items"]] == [str(first.code)]
    assert page["next_cursor"] == str(first.pk)
    last = client.get("/certificates", limit=1, cursor=page["next_cursor"]).json()
    assert [i["code"] for i in last["items"]] == [str(second.code)]
    assert last["next_cursor"] is None
    assert [i["upn"] for i in client.get("/certificates", upn="BOB@contoso.example").json()["items"]] == [
        "bob@contoso.example"
    ]


def test_a_listed_certificate_keeps_quotes_line_breaks_and_letters_outside_ascii_in_its_text(
    intune_admin: User, api_as: Callable[..., ApiClient]
) -> None:
    certificate = stored_certificate()
    subject = 'CN=Zoë "Z" Ångström\nO=Contoso\\Lab'
    Certificate.objects.filter(pk=certificate.pk).update(subject=subject)
    [item] = api_as(intune_admin).get("/certificates").json()["items"]
    assert item["subject"] == subject
