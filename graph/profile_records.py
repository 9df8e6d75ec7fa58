"""A portal profile as Intune records it: the deviceConfiguration body, its assignments, and how what
Intune holds differs from the profile.

Every property is one Microsoft's beta schema has for the profile's type (docs/graph-endpoints.md).
"""

from __future__ import annotations

from typing import Any

from directory.models import Platform
from profiles.models import ApplicabilityRule, CertificateAccess, Profile, ProfileAssignment

ODATA = "#microsoft.graph."
RULE_TYPES = {
    ApplicabilityRule.Property.OS_EDITION: "deviceManagementApplicabilityRuleOsEdition",
    ApplicabilityRule.Property.OS_VERSION: "deviceManagementApplicabilityRuleOsVersion",
}
# Compared after a read-back and by reconcile; the rest are Intune's own (id, version, dates).
COMPARED_FIELDS = (
    "displayName",
    "description",
    "intendedPurpose",
    "keyStorageProvider",
    "certificateAccessType",
    "silentCertificateAccessDetails",
    "deviceManagementApplicabilityRuleOsEdition",
    "deviceManagementApplicabilityRuleOsVersion",
    "roleScopeTagIds",
)


class ProfileShapeError(ValueError):
    """The profile has something Intune's schema cannot hold (said in the message)."""


def _rules(profile: Profile) -> dict[str, dict[str, Any] | None]:
    """Intune holds at most one OS edition rule and one OS version rule per profile."""
    out: dict[str, dict[str, Any] | None] = dict.fromkeys(RULE_TYPES.values())
    for rule in profile.applicability_rules.all():
        name = RULE_TYPES[ApplicabilityRule.Property(rule.os_property)]
        if out[name] is not None:
            raise ProfileShapeError(
                f"Intune holds one {rule.get_os_property_display()} rule per profile; this profile has more."
            )
        body: dict[str, Any] = {
            "@odata.type": ODATA + name,
            "name": rule.describe()[:200],
            "ruleType": rule.rule_type,
        }
        if rule.os_property == ApplicabilityRule.Property.OS_EDITION:
            body["osEditionTypes"] = list(rule.editions)
        else:
            body["minOSVersion"], body["maxOSVersion"] = rule.min_version, rule.max_version
        out[name] = body
    return out


def profile_body(profile: Profile, scope_tag_ids: list[str]) -> dict[str, Any]:
    """The POST/PATCH body of ``profile`` with the Intune ids of its scope tags."""
    body: dict[str, Any] = {
        "@odata.type": ODATA + profile.graph_type,
        "displayName": profile.name,
        "description": profile.description,
        "roleScopeTagIds": scope_tag_ids,
        "intendedPurpose": profile.intended_purpose,
    }
    if profile.platform == Platform.WINDOWS:
        body["keyStorageProvider"] = profile.key_storage_provider
        body.update(_rules(profile))
    if profile.platform == Platform.ANDROID_FULLY_MANAGED:
        body["certificateAccessType"] = profile.certificate_access
        packages = (
            profile.silent_access_packages
            if profile.certificate_access == CertificateAccess.SPECIFIC_APPS
            else []
        )
        body["silentCertificateAccessDetails"] = [
            {"@odata.type": ODATA + "androidDeviceOwnerSilentCertificateAccess", "packageId": p}
            for p in packages
        ]
    return body


def assignments_body(profile: Profile) -> list[dict[str, Any]]:
    """The ``assign`` action's assignments: groups included and excluded, all users, all devices."""
    targets: list[dict[str, Any]] = []
    if profile.all_users:
        targets.append({"@odata.type": ODATA + "allLicensedUsersAssignmentTarget"})
    if profile.all_devices:
        targets.append({"@odata.type": ODATA + "allDevicesAssignmentTarget"})
    for assignment in profile.assignments.select_related("group").order_by("mode", "group__object_id"):
        kind = (
            "groupAssignmentTarget"
            if assignment.mode == ProfileAssignment.Mode.INCLUDE
            else "exclusionGroupAssignmentTarget"
        )
        targets.append({"@odata.type": ODATA + kind, "groupId": str(assignment.group.object_id)})
    return [{"@odata.type": ODATA + "deviceConfigurationAssignment", "target": t} for t in targets]


def _target_key(target: dict[str, Any]) -> tuple[str, str]:
    return (str(target.get("@odata.type", "")).removeprefix(ODATA), str(target.get("groupId") or "").lower())


def assignment_keys(assignments: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {_target_key(a.get("target") or {}) for a in assignments}


def _normal(name: str, value: Any) -> Any:
    if value in (None, "", []):
        return None
    if name == "roleScopeTagIds":
        return sorted(str(v) for v in value)
    if isinstance(value, dict):
        return {k: _normal(k, v) for k, v in value.items() if not k.startswith("@")}
    if isinstance(value, list):
        return [_normal(name, v) for v in value]
    if isinstance(value, str) and name in {
        "intendedPurpose",
        "keyStorageProvider",
        "certificateAccessType",
        "ruleType",
    }:
        return value.lower()
    return value


def differences(
    body: dict[str, Any],
    record: dict[str, Any],
    assignments: list[dict[str, Any]],
    intune_assignments: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """What Intune's copy has otherwise than ``body`` and ``assignments`` would make it."""
    found = [
        {"field": name, "portal": body.get(name), "intune": record.get(name)}
        for name in COMPARED_FIELDS
        if name in body and _normal(name, body.get(name)) != _normal(name, record.get(name))
    ]
    if record.get("@odata.type") and record["@odata.type"] != body["@odata.type"]:
        found.append({"field": "@odata.type", "portal": body["@odata.type"], "intune": record["@odata.type"]})
    ours, theirs = assignment_keys(assignments), assignment_keys(intune_assignments)
    if ours != theirs:
        found.append(
            {"field": "assignments", "portal": sorted(map(list, ours)), "intune": sorted(map(list, theirs))}
        )
    return found
