"""Evaluating profiles and the pages built on it run as many queries with 20 profiles as with 2."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from directory.models import DirectoryUser, Group, Platform, WindowsEdition
from portal import summaries
from portal.models import User
from profiles.models import CertificateAccess, IntendedPurpose, KeyStorageProvider, Profile
from profiles.reports import profiles_for_user
from profiles.specs import forget_tenant_specs
from profiles.tests import factories as f

pytestmark = pytest.mark.django_db

KSPS = [str(choice) for choice in KeyStorageProvider]
PURPOSES = [IntendedPurpose.SMIME_ENCRYPTION, IntendedPurpose.SMIME_SIGNING]


class Tenant:
    """One user with a Windows PC and an Android phone, and profiles whose settings differ."""

    def __init__(self) -> None:
        self.staff, self.contractors = f.group("Staff"), f.group("Contractors")
        self.pcs, self.kiosks = f.group("PCs", Group.Kind.DEVICE), f.group("Kiosks", Group.Kind.DEVICE)
        self.user = f.user("alice@contoso.example", self.staff)
        f.device("PC-ALICE", self.user, self.pcs, edition=WindowsEdition.ENTERPRISE)
        f.device("PHONE-ALICE", self.user, platform=Platform.ANDROID_FULLY_MANAGED, version="14")
        f.device("KIOSK", None, self.kiosks)
        f.user("bob@contoso.example", self.contractors)
        self.profiles: list[Profile] = []

    def add_profiles(self, count: int) -> None:
        """Profiles alternating between Windows and Android, with their own groups, rules and settings."""
        for _ in range(count):
            i = len(self.profiles)
            own = f.group(f"Group {i}")
            purpose = PURPOSES[i % 2]
            if i % 4 < 2:
                profile = f.profile(
                    f"Windows {i}",
                    intended_purpose=purpose,
                    key_storage_provider=KSPS[(i // 4) % len(KSPS)],
                    include=[self.staff, own, self.pcs],
                    exclude=[self.contractors, self.kiosks],
                    rules=[f.edition_rule("exclude", WindowsEdition.HOME)] if i % 8 < 4 else [],
                )
            else:
                profile = f.profile(
                    f"Android {i}",
                    platform=Platform.ANDROID_FULLY_MANAGED,
                    intended_purpose=purpose,
                    certificate_access=CertificateAccess.SPECIFIC_APPS,
                    silent_access_packages=[f"com.contoso.app{i}"],
                    all_users=i % 3 == 0,
                    include=[own],
                    exclude=[self.contractors],
                )
            self.profiles.append(profile)


def queries(run: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as captured:
        run()
    return len(captured)


def first_and_next(run: Callable[[Tenant], Any], tenant: Tenant) -> tuple[int, int]:
    """Queries of the first run after the profiles changed (specs read again), and of the next one."""
    return queries(lambda: run(tenant)), queries(lambda: run(tenant))


def counts_with_2_and_20_profiles(run: Callable[[Tenant], Any]) -> tuple[tuple[int, int], tuple[int, int]]:
    tenant = Tenant()
    tenant.add_profiles(2)
    run(tenant)  # warm per-process caches (content types, permissions) out of the count
    forget_tenant_specs()
    with_two = first_and_next(run, tenant)
    tenant.add_profiles(18)
    with_twenty = first_and_next(run, tenant)
    return with_two, with_twenty


@pytest.fixture
def helpdesk_client(make_admin: Callable[..., User], client: Client, settings: Any) -> Client:
    settings.PORTAL_ENFORCE_MFA = False
    client.force_login(make_admin("help_desk_operator"))
    return client


def test_profiles_for_one_user_run_as_many_queries_with_20_profiles_as_with_2() -> None:
    def run(tenant: Tenant) -> None:
        results = profiles_for_user(DirectoryUser.objects.get(pk=tenant.user.pk))
        assert len(results) == len(tenant.profiles)

    with_two, with_twenty = counts_with_2_and_20_profiles(run)
    assert with_twenty == with_two


def test_the_directory_user_page_runs_as_many_queries_with_20_profiles_as_with_2(
    helpdesk_client: Client,
) -> None:
    def run(tenant: Tenant) -> None:
        summaries.forget()  # rendered, not a kept page
        page = helpdesk_client.get(reverse("directory:user", args=[tenant.user.object_id]))
        assert page.status_code == 200
        panel = next(
            p["context"] for p in page.context["panels"] if p["template"] == "profiles/_user_panel.html"
        )
        # Reaching profiles are listed, the others folded into a count.
        assert len(panel["user_profiles"]) + panel["not_reaching"] == len(tenant.profiles)

    with_two, with_twenty = counts_with_2_and_20_profiles(run)
    assert with_twenty == with_two


def test_the_profile_report_page_runs_as_many_queries_with_20_profiles_as_with_2(
    helpdesk_client: Client,
) -> None:
    def run(tenant: Tenant) -> None:
        page = helpdesk_client.get(reverse("profiles:report", args=[tenant.profiles[0].code]))
        assert page.status_code == 200
        assert len(page.context["rows"]) == 2  # PC-ALICE, and PHONE-ALICE as Not applicable

    with_two, with_twenty = counts_with_2_and_20_profiles(run)
    assert with_twenty == with_two


def test_the_profile_overview_and_user_report_run_as_many_queries_with_20_profiles_as_with_2(
    helpdesk_client: Client,
) -> None:
    def run(tenant: Tenant) -> None:
        code = tenant.profiles[0].code
        assert helpdesk_client.get(reverse("profiles:detail", args=[code])).status_code == 200
        assert helpdesk_client.get(reverse("profiles:user_report", args=[code])).status_code == 200

    with_two, with_twenty = counts_with_2_and_20_profiles(run)
    assert with_twenty == with_two


def test_the_profile_list_page_runs_as_many_queries_with_20_profiles_as_with_2(
    helpdesk_client: Client,
) -> None:
    def run(tenant: Tenant) -> None:
        page = helpdesk_client.get(reverse("profiles:list"))
        assert page.status_code == 200
        assert len(page.context["page"].object_list) == len(tenant.profiles)

    with_two, with_twenty = counts_with_2_and_20_profiles(run)
    assert with_twenty == with_two
