"""What scope-limited admins see and may change, through the pages, as the demo's personas use them.

The personas mirror ``devtools.admins``: helpdesk.eu (Help Desk Operator over Europe), profiles.na
(Policy and Profile Manager over North America), and an admin with everything. Certificates are
imported with the Default tag, as the demo's are.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from certs import imports, lifecycle
from certs.models import Certificate, EncryptionKey, GraphState
from certs.tests.importing import add_key, directory_user, pfx_for
from connectors.models import Connector
from portal import audit
from portal.audit import Actor
from portal.models import AuditEvent, Role, RoleAssignment, ScopeTag, User
from profiles import services as profile_services
from profiles.models import Profile
from profiles.tests import factories as f

pytestmark = pytest.mark.django_db

ALICE = "alice@contoso.example"
BOB = "bob@contoso.example"


@pytest.fixture(autouse=True)
def no_mfa_step(settings: Any) -> None:
    settings.PORTAL_ENFORCE_MFA = False


@pytest.fixture
def europe(make_tag: Callable[[str], ScopeTag]) -> ScopeTag:
    return make_tag("Europe")


@pytest.fixture
def north_america(make_tag: Callable[[str], ScopeTag]) -> ScopeTag:
    return make_tag("North America")


@pytest.fixture
def key(db: None) -> EncryptionKey:
    return add_key()


def _signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _import(key: EncryptionKey, upn: str, tag: ScopeTag, *, days: int = 365) -> Certificate:
    directory_user(upn)
    item = lifecycle.certificate_import(
        Actor.system("Demo data"),
        entry=imports.Entry("a.pfx", pfx_for(upn, "pw", days=days), "pw", upn, "smimeEncryption"),
        key=key,
        tags=[tag],
    )
    assert item.certificate is not None
    return item.certificate


def _certificate_reader(make_admin: Callable[..., User], tag: ScopeTag) -> User:
    """An admin who reads certificates and the audit log over ``tag``, but not the directory."""
    role = Role.objects.create(name="Certificate auditor", permissions=["certificates.read", "audit.read"])
    user = make_admin(None, email="auditor.eu@contoso.example")
    assignment = RoleAssignment.objects.create(role=role, name="Certificate auditor (Europe)")
    assignment.members.add(user)
    assignment.scope_tags.set([tag])
    return user


def _delete(admin: User, cert: Certificate) -> None:
    response = _signed_in(admin).post(reverse("certs:delete", args=[cert.code]), {"confirm": cert.thumbprint})
    assert response.status_code == 302


def _csv(client: Client) -> str:
    response = client.get(reverse("audit_export"))
    return b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]


# --- Item: certificates are visible to whoever may see their user ------------------------------


def test_a_scoped_help_desk_operator_sees_the_certificates_of_a_user_they_can_look_up(
    make_admin: Callable[..., User], europe: ScopeTag, key: EncryptionKey
) -> None:
    cert = _import(key, ALICE, ScopeTag.default())
    helpdesk_eu = _signed_in(make_admin("help_desk_operator", tags=[europe]))
    page = helpdesk_eu.get(reverse("directory:user", args=[cert.user.object_id])).content.decode()
    assert cert.thumbprint[:13] in page
    assert "no imported certificates" not in page
    # They change nothing, so nothing is offered.
    assert reverse("certs:import") not in page
    listing = helpdesk_eu.get(reverse("certs:list")).content.decode()
    assert 'data-testid="certificate"' in listing and cert.thumbprint[:13] in listing
    assert helpdesk_eu.get(reverse("certs:detail", args=[cert.code])).status_code == 200


def test_a_user_without_certificates_is_said_to_have_none(
    make_admin: Callable[..., User], europe: ScopeTag
) -> None:
    user = directory_user(BOB, "Bob Kelly")
    page = (
        _signed_in(make_admin("help_desk_operator", tags=[europe]))
        .get(reverse("directory:user", args=[user.object_id]))
        .content.decode()
    )
    assert "Bob Kelly has no imported certificates." in page


def test_remove_expired_is_offered_only_to_an_admin_who_may_delete_those_certificates(
    make_admin: Callable[..., User], europe: ScopeTag, key: EncryptionKey
) -> None:
    cert = _import(key, ALICE, ScopeTag.default())
    Certificate.objects.filter(pk=cert.pk).update(not_after=timezone.now() - timedelta(days=2))
    url = reverse("directory:user", args=[cert.user.object_id])
    remove = reverse("certs:remove_expired", args=[cert.user.object_id])
    scoped_admin = _signed_in(make_admin("intune_administrator", tags=[europe]))
    assert remove not in scoped_admin.get(url).content.decode()
    assert remove in _signed_in(make_admin("intune_administrator")).get(url).content.decode()


def test_a_scoped_operator_is_told_no_connector_carries_their_tags_not_to_add_one(
    make_admin: Callable[..., User], europe: ScopeTag
) -> None:
    connector = Connector.objects.create(name="CONNECTOR-01")
    connector.scope_tags.set([ScopeTag.default()])
    helpdesk_eu = _signed_in(make_admin("help_desk_operator", tags=[europe]))
    page = helpdesk_eu.get(reverse("connectors:list")).content.decode()
    assert "No connectors carry your scope tags." in page
    assert "No connectors yet" not in page and "Choose Add" not in page
    home = helpdesk_eu.get(reverse("home")).content.decode()
    assert "No connectors carry your scope tags." in home and "No connectors enrolled" not in home


def test_with_no_connector_at_all_only_an_admin_who_may_add_is_told_to_choose_add(
    make_admin: Callable[..., User],
) -> None:
    helpdesk = _signed_in(make_admin("help_desk_operator")).get(reverse("connectors:list")).content.decode()
    assert "No connectors yet." in helpdesk and "Choose Add" not in helpdesk
    admin = _signed_in(make_admin("intune_administrator")).get(reverse("connectors:list")).content.decode()
    assert "No connectors yet. Choose Add" in admin


# --- Item: audit events are read within the scope of what they name ---------------------------


def test_a_scoped_admin_sees_no_out_of_scope_certificate_on_home_in_the_audit_log_or_its_csv(
    make_admin: Callable[..., User], europe: ScopeTag, key: EncryptionKey
) -> None:
    mine, theirs = _import(key, ALICE, europe), _import(key, BOB, ScopeTag.default())
    admin = make_admin("intune_administrator")
    _delete(admin, mine)
    _delete(admin, theirs)
    auditor = _signed_in(_certificate_reader(make_admin, europe))
    home = auditor.get(reverse("home")).content.decode()
    logs = auditor.get(reverse("audit_logs")).content.decode()
    export = _csv(auditor)
    for shown in (home, logs, export):
        assert ALICE in shown
        assert BOB not in shown and theirs.thumbprint not in shown
    hidden = AuditEvent.objects.get(activity="Delete certificate", resources__0__name__startswith=BOB)
    assert auditor.get(reverse("audit_detail", args=[hidden.code])).status_code == 404
    # An admin over every tag still sees both.
    everything = _csv(_signed_in(admin))
    assert ALICE in everything and BOB in everything


def test_an_event_keeps_the_scope_its_objects_had_when_it_was_written(
    make_admin: Callable[..., User], europe: ScopeTag, north_america: ScopeTag
) -> None:
    profile = f.profile("Europe S/MIME")
    profile.scope_tags.set([europe])
    admin = make_admin("intune_administrator")
    profile_services.profile_update_basics(
        actor=Actor.for_user(admin), profile=profile, name="Europe S/MIME v2", description=""
    )
    # The profile moves to North America afterwards: the earlier change stays a Europe event.
    profile.scope_tags.set([north_america])
    profiles_na = _signed_in(make_admin("policy_and_profile_manager", tags=[north_america]))
    assert "Europe S/MIME" not in profiles_na.get(reverse("audit_logs")).content.decode()
    profiles_eu = _signed_in(make_admin("policy_and_profile_manager", tags=[europe]))
    assert "Europe S/MIME v2" in profiles_eu.get(reverse("audit_logs")).content.decode()


def test_a_help_desk_operator_sees_certificate_events_through_the_users_but_not_other_tags_connectors(
    make_admin: Callable[..., User], europe: ScopeTag, key: EncryptionKey
) -> None:
    cert = _import(key, BOB, ScopeTag.default())
    with transaction.atomic():
        connector = Connector.objects.create(name="CONNECTOR-DEFAULT")
        connector.scope_tags.set([ScopeTag.default()])
        audit.record(
            Actor.for_user(make_admin("intune_administrator")),
            activity="Rename connector",
            category="Connectors",
            operation=AuditEvent.Operation.UPDATE,
            resources=[audit.resource(connector, type="Certificate connector")],
        )
    helpdesk_eu = _signed_in(make_admin("help_desk_operator", tags=[europe]))
    logs = helpdesk_eu.get(reverse("audit_logs")).content.decode()
    assert cert.upn in logs  # the import, of a user they may look up
    assert "CONNECTOR-DEFAULT" not in logs


def test_events_written_before_scopes_were_stored_are_shown_only_to_admins_who_read_everything(
    make_admin: Callable[..., User], europe: ScopeTag
) -> None:
    AuditEvent.objects.create(
        actor_name="someone@contoso.example",
        activity="Delete certificate",
        operation=AuditEvent.Operation.DELETE,
        category="Certificates",
        correlation_id=uuid.uuid4(),
        resources=[{"type": "Certificate", "id": "1", "name": f"{BOB} 0a1b2c3d4e5f (smimeEncryption)"}],
    )
    assert AuditEvent.objects.get().scope_area is None
    auditor = _signed_in(_certificate_reader(make_admin, europe))
    assert BOB not in auditor.get(reverse("audit_logs")).content.decode()
    assert BOB in _signed_in(make_admin("read_only_operator")).get(reverse("audit_logs")).content.decode()


# --- Item: writes use only the assignments that grant them -------------------------------------


@pytest.fixture
def europe_writer_who_reads_everything(make_admin: Callable[..., User], europe: ScopeTag) -> User:
    """One tagged assignment that writes, plus one untagged read-only assignment."""
    user = make_admin("intune_administrator", tags=[europe], email="admin.eu@contoso.example")
    reader = RoleAssignment.objects.create(
        role=Role.objects.get(key="read_only_operator"), name="Read everything"
    )
    reader.members.add(user)
    return user


def test_a_read_only_assignment_does_not_let_a_scoped_writer_move_a_profile_out_of_their_reach(
    europe_writer_who_reads_everything: User, europe: ScopeTag, north_america: ScopeTag
) -> None:
    profile = f.profile("Europe S/MIME")
    profile.scope_tags.set([europe])
    client = _signed_in(europe_writer_who_reads_everything)
    url = reverse("profiles:edit", args=[profile.code, "scope"])
    form = client.get(url).content.decode()
    assert "North America" not in form and "Europe" in form
    client.post(url, {"scope_tags": [north_america.pk]})
    assert list(Profile.objects.get(pk=profile.pk).scope_tags.all()) == [europe]


def test_a_read_only_assignment_does_not_let_a_scoped_role_administrator_hand_out_other_tags(
    make_admin: Callable[..., User], europe: ScopeTag, north_america: ScopeTag
) -> None:
    roles_eu = make_admin("intune_role_administrator", tags=[europe])
    reader = RoleAssignment.objects.create(
        role=Role.objects.get(key="read_only_operator"), name="Read everything"
    )
    reader.members.add(roles_eu)
    role = Role.objects.get(key="help_desk_operator")
    client = _signed_in(roles_eu)
    url = reverse("assignment_create", args=[role.code])
    assert "North America" not in client.get(url).content.decode()
    client.post(url, {"name": "Help desk (North America)", "scope_tags": [north_america.pk]})
    assert not RoleAssignment.objects.filter(name="Help desk (North America)").exists()


def test_a_connector_page_offers_changes_only_on_connectors_within_the_writers_tags(
    europe_writer_who_reads_everything: User, europe: ScopeTag
) -> None:
    ours, theirs = (
        Connector.objects.create(name="CONNECTOR-EU"),
        Connector.objects.create(name="CONNECTOR-NA"),
    )
    ours.scope_tags.set([europe])
    theirs.scope_tags.set([ScopeTag.default()])
    client = _signed_in(europe_writer_who_reads_everything)
    for connector, offered in ((ours, True), (theirs, False)):
        page = client.get(reverse("connectors:detail", args=[connector.code])).content.decode()
        for action in (
            reverse("connectors:disable", args=[connector.code]),
            reverse("connectors:revoke", args=[connector.code]),
            reverse("connectors:rename", args=[connector.code]),
            reverse("connectors:delete", args=[connector.code]),
        ):
            assert (f'"{action}"' in page) is offered, (connector.name, action)
    assert client.post(reverse("connectors:disable", args=[theirs.code])).status_code == 403


def test_a_new_certificate_import_gets_only_the_importers_writing_tags(
    europe_writer_who_reads_everything: User, europe: ScopeTag, north_america: ScopeTag
) -> None:
    from portal import access

    assert access.creator_tags(europe_writer_who_reads_everything, "certificates") == [europe]
    assert access.creator_tags(europe_writer_who_reads_everything, "profiles", [north_america]) == [europe]


# --- Item: failures are easy to see -------------------------------------------------------------


def test_home_counts_failed_intune_uploads_the_admin_may_see_and_links_to_them(
    make_admin: Callable[..., User], europe: ScopeTag, key: EncryptionKey
) -> None:
    failed = [_import(key, f"user{i}@contoso.example", ScopeTag.default()) for i in range(3)]
    Certificate.objects.filter(pk__in=[c.pk for c in failed[:2]]).update(graph_state=GraphState.FAILED)
    page = _signed_in(make_admin("help_desk_operator", tags=[europe])).get(reverse("home")).content.decode()
    tile = page[page.index('data-testid="failed-uploads"') :]
    assert f'href="{reverse("certs:list")}?state=failed"' in page
    assert '<div class="figure">2</div>' in tile[:200]
    assert "Failed uploads to Intune" in tile[:300]


def test_home_summarises_a_bulk_import_with_a_count_and_a_link(make_admin: Callable[..., User]) -> None:
    admin = make_admin("intune_administrator")
    with transaction.atomic():
        event = audit.record(
            Actor.for_user(admin),
            activity="Import certificates",
            category="Certificates",
            operation=AuditEvent.Operation.CREATE,
            resources=[
                audit.resource(type="Certificate", id=str(i), name=f"user{i}@contoso.example {i:040x}")
                for i in range(66)
            ],
        )
    page = _signed_in(admin).get(reverse("home")).content.decode()
    assert "66 Certificates" in page
    assert "user7@contoso.example" not in page
    assert page.count(reverse("audit_detail", args=[event.code])) >= 2


@pytest.mark.parametrize(
    ("name", "noun", "query"),
    [
        ("directory:users", "users", {"q": "zzz-nobody"}),
        ("directory:groups", "groups", {"q": "zzz-nobody"}),
        ("directory:devices", "devices", {"q": "zzz-nobody"}),
        ("certs:list", "certificates", {"q": "zzz-nobody"}),
    ],
)
def test_an_empty_search_says_nothing_matches_and_offers_to_clear_it(
    make_admin: Callable[..., User], name: str, noun: str, query: dict[str, str]
) -> None:
    client = _signed_in(make_admin("help_desk_operator"))
    for headers in ({}, {"HX-Request": "true"}):
        body = client.get(reverse(name), query, headers=headers).content.decode()
        assert f"No {noun} match “zzz-nobody”." in body, headers
        assert f'href="{reverse(name)}">Clear search and filters' in body


def test_an_empty_filter_without_search_text_says_the_filters_match_nothing(
    make_admin: Callable[..., User], key: EncryptionKey
) -> None:
    _import(key, ALICE, ScopeTag.default())
    client = _signed_in(make_admin("help_desk_operator"))
    body = client.get(reverse("certs:list"), {"state": GraphState.FAILED}).content.decode()
    assert "No certificates match these filters." in body
    assert "No certificates yet" not in body
