"""Demo PKCS imported certificate profiles for the Contoso demo tenant (see devtools.tenant).

Created through the profile services, so each creation is audited like an admin's. A
profile whose name is already taken is left alone: re-seeding creates nothing and
keeps an admin's edits. Groups are found by their demo names; a group that is
missing (the directory was not seeded, or it was renamed) is left out of the assignments.
"""

from __future__ import annotations

from dataclasses import dataclass

from directory.models import Group, Platform, WindowsEdition
from portal.audit import Actor
from portal.models import ScopeTag
from profiles import services
from profiles.models import (
    ApplicabilityRule,
    CertificateAccess,
    IntendedPurpose,
    KeyStorageProvider,
    Profile,
)
from profiles.services import ProfileDraft
from profiles.specs import RuleSpec

OUTLOOK = "com.microsoft.office.outlook"


@dataclass(frozen=True)
class _DemoProfile:
    name: str
    description: str
    platform: str
    intended_purpose: str
    key_storage_provider: str = ""
    certificate_access: str = ""
    silent_access_packages: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    rules: tuple[RuleSpec, ...] = ()
    tags: tuple[str, ...] = ()  # besides Default


DEMO_PROFILES: tuple[_DemoProfile, ...] = (
    _DemoProfile(
        name="S/MIME encryption \u2013 Windows",
        description="Imported S/MIME encryption certificates for every member of staff on Windows, "
        "so Outlook can read mail encrypted to older keys. The pilot group has its own profile.",
        platform=Platform.WINDOWS,
        intended_purpose=IntendedPurpose.SMIME_ENCRYPTION,
        key_storage_provider=KeyStorageProvider.TPM_OTHERWISE_SOFTWARE,
        include=("All Company",),
        exclude=("Pilot - Intune Certificates",),
        rules=(
            RuleSpec(
                rule_type=ApplicabilityRule.RuleType.INCLUDE,
                os_property=ApplicabilityRule.Property.OS_VERSION,
                min_version="10.0.19045.0",
                max_version="10.0.99999.0",
            ),
            RuleSpec(
                rule_type=ApplicabilityRule.RuleType.EXCLUDE,
                os_property=ApplicabilityRule.Property.OS_EDITION,
                editions=(WindowsEdition.HOME,),
            ),
        ),
    ),
    _DemoProfile(
        name="S/MIME encryption \u2013 Windows (pilot, TPM only)",
        description="Pilot: encryption keys go to the TPM or the install fails, "
        "before this becomes the default.",
        platform=Platform.WINDOWS,
        intended_purpose=IntendedPurpose.SMIME_ENCRYPTION,
        key_storage_provider=KeyStorageProvider.TPM_OTHERWISE_FAIL,
        include=("Pilot - Intune Certificates",),
    ),
    _DemoProfile(
        name="S/MIME signing \u2013 iOS",
        description="S/MIME signing certificates for the native Mail app and Outlook "
        "on company iPhones and iPads.",
        platform=Platform.IOS,
        intended_purpose=IntendedPurpose.SMIME_SIGNING,
        include=("S/MIME Users",),
    ),
    _DemoProfile(
        name="S/MIME encryption \u2013 Android Enterprise fully managed",
        description="Encryption certificates on corporate Android devices, "
        "handed to Outlook without a prompt.",
        platform=Platform.ANDROID_FULLY_MANAGED,
        intended_purpose=IntendedPurpose.SMIME_ENCRYPTION,
        certificate_access=CertificateAccess.SPECIFIC_APPS,
        silent_access_packages=(OUTLOOK,),
        include=("All Company",),
        exclude=("Contractors",),
        tags=("Europe",),
    ),
)


def seed_demo_profiles() -> list[Profile]:
    """Create the demo profiles that do not exist yet; return the ones created."""
    actor = Actor.system("seed_demo")
    default = ScopeTag.default()
    created = []
    for demo in DEMO_PROFILES:
        if Profile.objects.filter(name__iexact=demo.name).exists():
            continue
        extra = tuple(ScopeTag.objects.filter(name__in=demo.tags))
        draft = ProfileDraft(
            platform=demo.platform,
            name=demo.name,
            description=demo.description,
            intended_purpose=demo.intended_purpose,
            key_storage_provider=demo.key_storage_provider,
            certificate_access=demo.certificate_access,
            silent_access_packages=demo.silent_access_packages,
            scope_tags=(default, *extra),
            include_groups=_groups(demo.include),
            exclude_groups=_groups(demo.exclude),
            rules=demo.rules,
        )
        created.append(services.profile_create(actor=actor, draft=draft))
    return created


def _groups(names: tuple[str, ...]) -> tuple[Group, ...]:
    found = Group.objects.filter(display_name__in=names, removed_at__isnull=True)
    return tuple(found.order_by("display_name"))
