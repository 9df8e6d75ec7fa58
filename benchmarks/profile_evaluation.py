"""Time the targeting evaluation of one profile over a large tenant on PostgreSQL.

    createdb -h 127.0.0.1 -U postgres pfx_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pfx_bench .venv/bin/python benchmarks/profile_evaluation.py

Builds (once; ``--rebuild`` to start again) 100,000 users, 200,000 devices and 1,000
groups with about 700,000 memberships, then evaluates one Windows profile with user and
device includes and excludes, two applicability rules and a conflicting profile.
It prints the time and query count of the set-based evaluation, and as a baseline the
naive per-user evaluation measured on a sample and extrapolated to the whole tenant
(its answers are checked against the set-based ones for that sample).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# Measured as deployed: with DEBUG on, Django records every query in memory (workers included).
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pfx_bench")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from directory.models import (  # noqa: E402
    Device,
    DirectoryUser,
    Group,
    GroupDeviceMember,
    GroupUserMember,
    Platform,
    WindowsEdition,
    version_key,
)
from profiles.lint import lint  # noqa: E402
from profiles.models import (  # noqa: E402
    ApplicabilityRule,
    IntendedPurpose,
    KeyStorageProvider,
    Profile,
    ProfileAssignment,
)
from profiles.reports import evaluate  # noqa: E402
from profiles.targeting import EXCLUDED, NOT_TARGETED  # noqa: E402

USERS, DEVICES, GROUPS = 100_000, 200_000, 1_000
BATCH = 10_000
PROFILE_NAME = "Benchmark S/MIME encryption (Windows)"
PLATFORMS = [Platform.WINDOWS] * 6 + [
    Platform.IOS,
    Platform.IOS,
    Platform.MACOS,
    Platform.ANDROID_WORK_PROFILE,
]
EDITIONS = [
    WindowsEdition.ENTERPRISE,
    WindowsEdition.PROFESSIONAL,
    WindowsEdition.EDUCATION,
    WindowsEdition.HOME,
]
VERSIONS = ["10.0.17763.1", "10.0.19045.3803", "10.0.22621.2861", "10.0.22631.3007", "10.0.26100.1"]


def build_tenant(scale: float) -> None:
    rng = random.Random(7)
    users, devices, groups = int(USERS * scale), int(DEVICES * scale), max(10, int(GROUPS * scale))
    print(f"Building {users:,} users, {devices:,} devices, {groups:,} groups ...", flush=True)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE directory_groupusermember, directory_groupdevicemember, directory_device, "
            "directory_group, directory_directoryuser, profiles_profile CASCADE"
        )
    for start in range(0, users, BATCH):
        DirectoryUser.objects.bulk_create(
            DirectoryUser(upn=f"user{i}@contoso.example", display_name=f"User {i}")
            for i in range(start, min(users, start + BATCH))
        )
    user_ids = list(DirectoryUser.objects.values_list("pk", flat=True))
    for start in range(0, devices, BATCH):
        batch = []
        for i in range(start, min(devices, start + BATCH)):
            platform = rng.choice(PLATFORMS)
            windows = platform == Platform.WINDOWS
            version = rng.choice(VERSIONS) if windows else "17.2"
            batch.append(
                Device(
                    name=f"DEV-{i:06d}",
                    platform=platform,
                    os_edition=rng.choice(EDITIONS) if windows else "",
                    os_version=version,
                    os_version_key=version_key(version),
                    # One device in twenty has no primary user (kiosks, shared PCs).
                    primary_user_id=user_ids[i % len(user_ids)] if i % 20 else None,
                )
            )
        Device.objects.bulk_create(batch)
    Group.objects.bulk_create(
        Group(display_name=f"Group {i:04d}", kind=Group.Kind.USER if i % 2 == 0 else Group.Kind.DEVICE)
        for i in range(groups)
    )
    with connection.cursor() as cursor:
        # Each user in ~3 user groups, each device in ~2 device groups, chosen by hashing.
        cursor.execute(
            """
            INSERT INTO directory_groupusermember (group_id, user_id)
            SELECT DISTINCT g.id, u.id FROM directory_directoryuser u
            CROSS JOIN generate_series(0, 2) AS k
            JOIN LATERAL (
                SELECT id FROM directory_group WHERE kind = 'user'
                ORDER BY id OFFSET abs(hashtext(u.id::text || ':' || k)) %% %s LIMIT 1
            ) g ON true
            """,
            [groups // 2],
        )
        cursor.execute(
            """
            INSERT INTO directory_groupdevicemember (group_id, device_id)
            SELECT DISTINCT g.id, d.id FROM directory_device d
            CROSS JOIN generate_series(0, 1) AS k
            JOIN LATERAL (
                SELECT id FROM directory_group WHERE kind = 'device'
                ORDER BY id OFFSET abs(hashtext(d.id::text || ':' || k)) %% %s LIMIT 1
            ) g ON true
            """,
            [groups // 2],
        )
        cursor.execute("ANALYZE")


@transaction.atomic
def build_profiles() -> Profile:
    Profile.objects.all().delete()
    user_groups = list(Group.objects.filter(kind=Group.Kind.USER).order_by("pk").values_list("pk", flat=True))
    device_groups = list(
        Group.objects.filter(kind=Group.Kind.DEVICE).order_by("pk").values_list("pk", flat=True)
    )
    profile = Profile.objects.create(
        name=PROFILE_NAME,
        platform=Platform.WINDOWS,
        intended_purpose=IntendedPurpose.SMIME_ENCRYPTION,
        key_storage_provider=KeyStorageProvider.TPM_OTHERWISE_SOFTWARE,
    )
    rows = [ProfileAssignment(profile=profile, group_id=g, mode="include") for g in user_groups[:100]]
    rows += [ProfileAssignment(profile=profile, group_id=g, mode="exclude") for g in user_groups[100:110]]
    rows += [ProfileAssignment(profile=profile, group_id=g, mode="include") for g in device_groups[:50]]
    rows += [ProfileAssignment(profile=profile, group_id=g, mode="exclude") for g in device_groups[50:55]]
    ProfileAssignment.objects.bulk_create(rows)
    ApplicabilityRule.objects.create(
        profile=profile,
        position=0,
        rule_type=ApplicabilityRule.RuleType.EXCLUDE,
        os_property=ApplicabilityRule.Property.OS_EDITION,
        editions=[WindowsEdition.HOME],
    )
    ApplicabilityRule.objects.create(
        profile=profile,
        position=1,
        rule_type=ApplicabilityRule.RuleType.INCLUDE,
        os_property=ApplicabilityRule.Property.OS_VERSION,
        min_version="10.0.19045.0",
        max_version="10.0.26100.9999",
    )
    other = Profile.objects.create(
        name="Benchmark conflicting profile",
        platform=Platform.WINDOWS,
        intended_purpose=IntendedPurpose.SMIME_ENCRYPTION,
        key_storage_provider=KeyStorageProvider.SOFTWARE,
    )
    ProfileAssignment.objects.bulk_create(
        ProfileAssignment(profile=other, group_id=g, mode="include") for g in user_groups[200:205]
    )
    return profile


def naive_outcome(profile: Profile, user: DirectoryUser) -> list[tuple[int, str]]:
    """What a per-user loop does: a handful of queries per user, logic in Python."""
    assignments = list(profile.assignments.select_related("group"))
    rules = list(profile.applicability_rules.all())
    user_groups = set(GroupUserMember.objects.filter(user=user).values_list("group_id", flat=True))
    inc_u = {a.group_id for a in assignments if a.mode == "include" and a.group.kind == "user"}
    exc_u = {a.group_id for a in assignments if a.mode == "exclude" and a.group.kind == "user"}
    inc_d = {a.group_id for a in assignments if a.mode == "include" and a.group.kind == "device"}
    exc_d = {a.group_id for a in assignments if a.mode == "exclude" and a.group.kind == "device"}
    user_in = profile.all_users or bool(user_groups & inc_u)
    user_out = bool(user_groups & exc_u)
    results = []
    for device in Device.objects.filter(primary_user=user, removed_at__isnull=True):
        device_groups = set(
            GroupDeviceMember.objects.filter(device=device).values_list("group_id", flat=True)
        )
        device_in = profile.all_devices or bool(device_groups & inc_d)
        device_out = bool(device_groups & exc_d)
        if not (user_in or device_in):
            state = NOT_TARGETED
        elif not ((user_in and not user_out) or (device_in and not device_out)):
            state = EXCLUDED
        elif device.platform != profile.platform:
            state = "notApplicable"
        else:
            state = "pending"
            for rule in rules:
                if rule.os_property == "osEdition":
                    match = device.os_edition in rule.editions
                else:
                    match = rule.min_key <= device.os_version_key <= rule.max_key and bool(
                        device.os_version_key
                    )
                if match != (rule.rule_type == "include"):
                    state = "notApplicable"
        results.append((device.pk, state))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rebuild", action="store_true", help="build the tenant again")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full tenant size")
    parser.add_argument("--sample", type=int, default=300, help="users in the naive baseline sample")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Run this against PostgreSQL: set DATABASE_URL=postgres://...")
    call_command("migrate", verbosity=0)
    if args.rebuild or DirectoryUser.objects.count() != int(USERS * args.scale):
        started = time.perf_counter()
        build_tenant(args.scale)
        print(f"  built in {time.perf_counter() - started:.1f} s")
    profile = build_profiles()
    print(
        f"Tenant: {DirectoryUser.objects.count():,} users, {Device.objects.count():,} devices, "
        f"{Group.objects.count():,} groups, {GroupUserMember.objects.count():,} user and "
        f"{GroupDeviceMember.objects.count():,} device memberships"
    )
    print(
        f"Profile: {profile.assignments.count()} group assignments, 2 applicability rules, 1 conflicting profile"
    )

    evaluate(profile).summary()  # warm the connection and the database cache
    timings = []
    for _ in range(3):
        with CaptureQueriesContext(connection) as summary_queries:
            started = time.perf_counter()
            summary = evaluate(Profile.objects.get(pk=profile.pk)).summary()
            timings.append(time.perf_counter() - started)
    print(
        f"\nSummary (device and user status counts): {min(timings):.3f} s best of 3, {len(summary_queries)} queries"
    )
    print(f"  devices: {summary.devices}")
    print(f"  users:   {summary.users}")

    with CaptureQueriesContext(connection) as pair_queries:
        started = time.perf_counter()
        pairs = list(evaluate(Profile.objects.get(pk=profile.pk)).pairs())
        pairs_time = time.perf_counter() - started
    print(
        f"Every (user, device) pair with state and reason: {pairs_time:.3f} s, {len(pair_queries)} queries, {len(pairs):,} pairs"
    )

    with CaptureQueriesContext(connection) as lint_queries:
        started = time.perf_counter()
        evaluation = evaluate(Profile.objects.get(pk=profile.pk))
        warnings = lint(evaluation, summary=evaluation.summary())
        lint_time = time.perf_counter() - started
    print(
        f"Summary + targeting lint: {lint_time:.3f} s, {len(lint_queries)} queries, {len(warnings)} warnings"
    )

    # Baseline: the per-user loop on a sample, extrapolated to every user.
    by_device = {p.device_id: p.state for p in pairs if p.device_id is not None}
    sample = list(DirectoryUser.objects.order_by("?")[: args.sample])
    with CaptureQueriesContext(connection) as naive_queries:
        started = time.perf_counter()
        naive = [naive_outcome(profile, user) for user in sample]
        naive_time = time.perf_counter() - started
    # The naive loop leaves conflicts out; compare the rest.
    normal = {d: ("pending" if s == "conflict" else s) for d, s in by_device.items()}
    mismatches = sum(1 for results in naive for device_id, state in results if normal[device_id] != state)
    total_users = DirectoryUser.objects.count()
    estimate = naive_time / len(sample) * total_users
    print(
        f"\nBaseline, naive per-user loop: {naive_time:.2f} s for {len(sample)} users "
        f"({len(naive_queries) / len(sample):.1f} queries per user) -> about {estimate:.0f} s and "
        f"{len(naive_queries) / len(sample) * total_users:,.0f} queries for {total_users:,} users"
    )
    print(f"  the naive and set-based answers disagree on {mismatches} of the sample's devices")
    print(
        f"Speed-up over the baseline: x{estimate / max(min(timings), 1e-9):.0f} (summary), x{estimate / pairs_time:.0f} (pairs)"
    )


if __name__ == "__main__":
    main()
