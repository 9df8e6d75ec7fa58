"""List answers are kept like the pages' pieces: asked again while nothing changed, they are not
built again; a change shows at once; a caller never gets an answer kept for a wider scope."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api.tests.conftest import ApiClient
from certs import lifecycle
from certs.imports import Entry
from certs.models import Certificate
from certs.tests.importing import directory_user, pfx_for, stored_certificate
from portal.audit import Actor
from portal.models import ScopeTag, User
from profiles import services as profile_services

pytestmark = pytest.mark.django_db

BOB = "bob@contoso.example"


def _reads(client: ApiClient, path: str, table: str) -> tuple[bytes, bool]:
    """The answer to ``path`` and whether answering it read ``table``."""
    with CaptureQueriesContext(connection) as queries:
        answer = client.get(path)
    assert answer.status_code == 200, answer.content
    return answer.content, any(table in q["sql"] for q in queries.captured_queries)


@pytest.mark.parametrize(
    ("path", "table"),
    [
        ("/certificates?limit=5", "certs_certificate"),
        ("/audit-events", "activity"),
        ("/profiles", "profiles_profile"),
    ],
)
def test_a_list_asked_again_while_nothing_changed_is_answered_without_reading_its_rows_again(
    intune_admin: User, api_as: Callable[..., ApiClient], path: str, table: str
) -> None:
    stored_certificate()
    client = api_as(intune_admin)
    first, read = _reads(client, path, table)
    assert read
    again, read = _reads(client, path, table)
    assert again == first
    assert not read


def _two_certificates() -> tuple[Certificate, Certificate]:
    alice = stored_certificate()
    directory_user(BOB)
    bob = lifecycle.certificate_import(
        Actor.system(),
        entry=Entry("b.pfx", pfx_for(BOB, "pw"), "pw", BOB, "smimeEncryption"),
        key=alice.encryption_key,
        tags=[ScopeTag.default()],
    ).certificate
    assert bob is not None
    return alice, bob


def test_each_page_and_filter_of_a_list_is_kept_apart(
    intune_admin: User, api_as: Callable[..., ApiClient]
) -> None:
    alice, bob = _two_certificates()
    client = api_as(intune_admin)
    first = client.get("/certificates?limit=1").json()
    second = client.get(f"/certificates?limit=1&cursor={first['next_cursor']}").json()
    assert [c["code"] for c in first["items"] + second["items"]] == [str(alice.code), str(bob.code)]
    assert [c["code"] for c in client.get(f"/certificates?upn={BOB}").json()["items"]] == [str(bob.code)]


def test_a_certificate_deleted_through_the_api_leaves_the_list_at_once(
    intune_admin: User, api_as: Callable[..., ApiClient]
) -> None:
    kept, gone = _two_certificates()
    client = api_as(intune_admin)
    assert {c["code"] for c in client.get("/certificates").json()["items"]} == {
        str(kept.code),
        str(gone.code),
    }

    assert client.delete(f"/certificates/{gone.code}").status_code == 204

    assert [c["code"] for c in client.get("/certificates").json()["items"]] == [str(kept.code)]
    assert not Certificate.objects.filter(pk=gone.pk).exists()


def test_a_token_of_one_scope_tag_never_gets_a_list_kept_for_a_wider_scope(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag], api_as: Callable[..., ApiClient]
) -> None:
    paris, berlin = make_tag("Paris"), make_tag("Berlin")
    for name, tag in (("Paris mail", paris), ("Berlin mail", berlin)):
        draft = profile_services.ProfileDraft(
            platform="iOS", name=name, intended_purpose="smimeEncryption", scope_tags=(tag,)
        )
        profile_services.profile_create(actor=Actor.system(), draft=draft)
    everyone = api_as(make_admin("intune_administrator"))
    assert [p["name"] for p in everyone.get("/profiles").json()] == ["Berlin mail", "Paris mail"]

    in_paris = api_as(make_admin("intune_administrator", tags=[paris]))

    assert [p["name"] for p in in_paris.get("/profiles").json()] == ["Paris mail"]
    assert [p["name"] for p in everyone.get("/profiles").json()] == ["Berlin mail", "Paris mail"]
