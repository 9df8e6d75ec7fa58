"""Every profile's spec is kept in the process between changes, and a change shows on the next view."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from directory.models import DirectoryUser, Group, WindowsEdition
from portal.audit import Actor
from profiles import services, specs
from profiles.models import ApplicabilityRule, ProfileAssignment
from profiles.reports import UserProfileResult, profiles_for_user
from profiles.specs import RuleSpec
from profiles.targeting import EXCLUDED, NOT_TARGETED
from profiles.tests import factories as f

pytestmark = pytest.mark.django_db


class Tenant:
    def __init__(self) -> None:
        self.staff = f.group("Staff")
        self.leavers = f.group("Leavers")
        self.alice = f.user("alice@contoso.example", self.staff, self.leavers)
        f.device("PC-ALICE", self.alice, edition=WindowsEdition.ENTERPRISE)
        self.profile = f.profile("S/MIME encryption", include=[self.staff])

    def result(self) -> UserProfileResult:
        (found,) = profiles_for_user(DirectoryUser.objects.get(pk=self.alice.pk))
        return found


def queries(run: object) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        run()  # type: ignore[operator]
    return [q["sql"] for q in captured.captured_queries]


def test_the_specs_are_read_once_and_reused_while_nothing_changes() -> None:
    tenant = Tenant()
    first = queries(tenant.result)
    again = queries(tenant.result)

    assert any("profiles_applicabilityrule" in sql and "MAX" not in sql for sql in first)
    assert not any("profiles_applicabilityrule" in sql and "MAX" not in sql for sql in again)
    assert len(again) < len(first)
    assert specs.tenant_specs() is specs.tenant_specs()


def test_new_assignments_show_on_the_next_view() -> None:
    tenant = Tenant()
    assert tenant.result().results[0].state != EXCLUDED

    services.profile_set_assignments(
        actor=Actor.system(),
        profile=tenant.profile,
        all_users=False,
        all_devices=False,
        include=[tenant.staff],
        exclude=[tenant.leavers],
    )

    result = tenant.result().results[0]
    assert result.state == EXCLUDED
    assert "Leavers" in result.reason


def test_removed_assignments_show_on_the_next_view() -> None:
    tenant = Tenant()
    assert tenant.result().reaches

    services.profile_set_assignments(
        actor=Actor.system(),
        profile=tenant.profile,
        all_users=False,
        all_devices=False,
        include=[],
        exclude=[],
    )

    assert tenant.result().results[0].state == NOT_TARGETED


def test_a_new_applicability_rule_shows_on_the_next_view() -> None:
    tenant = Tenant()
    assert tenant.result().reaches

    rule = RuleSpec(
        rule_type=ApplicabilityRule.RuleType.EXCLUDE,
        os_property=ApplicabilityRule.Property.OS_EDITION,
        editions=(WindowsEdition.ENTERPRISE,),
    )
    services.profile_set_rules(actor=Actor.system(), profile=tenant.profile, rules=[rule])

    result = tenant.result()
    assert not result.reaches
    assert "applicability rule" in result.results[0].reason


def test_an_excluding_group_renamed_by_the_directory_shows_on_the_next_view() -> None:
    tenant = Tenant()
    tenant.profile.assignments.create(group=tenant.leavers, mode=ProfileAssignment.Mode.EXCLUDE)
    assert "Leavers" in tenant.result().results[0].reason

    tenant.leavers.display_name = "Former staff"
    tenant.leavers.save()

    assert "Former staff" in tenant.result().results[0].reason


def test_an_included_group_removed_by_a_directory_sync_stops_reaching_on_the_next_view() -> None:
    tenant = Tenant()
    assert tenant.result().reaches

    # As a sync marks groups it no longer finds: one UPDATE, no save().
    Group.objects.filter(pk=tenant.staff.pk).update(removed_at=timezone.now())

    assert tenant.result().results[0].state == NOT_TARGETED


def test_kept_specs_are_read_again_after_a_minute_even_if_nothing_seems_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant = Tenant()
    assert tenant.result().reaches
    # A write the fingerprint cannot see: a bulk UPDATE of an assignment's mode.
    tenant.profile.assignments.update(mode=ProfileAssignment.Mode.EXCLUDE)
    assert tenant.result().reaches

    now = specs._now()
    monkeypatch.setattr(specs, "_now", lambda: now + 61)

    assert not tenant.result().reaches
