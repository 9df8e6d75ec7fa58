"""Refusing what real Graph refuses: unknown ``$select`` properties, unknown body properties, a wrong
``@odata.type``, enum values a type does not have, and beta-only properties asked of v1.0.

Property names come from Microsoft's SDK models (``schema_data``); enum members from the same
models. The error texts are the ones Graph's OData layer answers with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from devtools.emulator.parsing import ODataError
from devtools.emulator.schema_data import _BETA, _V1

PROPERTIES: dict[str, dict[str, frozenset[str]]] = {
    "v1.0": {name: frozenset(text.split()) for name, text in _V1.items()},
    "beta": {name: frozenset(text.split()) for name, text in _BETA.items()},
}

# Navigation properties: readable through their own paths, never written in an entity's body.
NAVIGATION = frozenset(
    {
        "assignments",
        "deviceSettingStateSummaries",
        "deviceStatusOverview",
        "deviceStatuses",
        "groupAssignments",
        "userStatusOverview",
        "userStatuses",
        "managedDeviceCertificateStates",
        "rootCertificate",
    }
)
# Set by the service, ignored or refused when a client sends them.
SERVER_OWNED = frozenset({"id", "version", "createdDateTime", "lastModifiedDateTime", "supportsScopeTags"})

ENUMS: dict[str, tuple[str, ...]] = {
    "intendedPurpose": ("unassigned", "smimeEncryption", "smimeSigning", "vpn", "wifi"),
    "keyStorageProviderOption": (
        "useTpmKspOtherwiseUseSoftwareKsp",
        "useTpmKspOtherwiseFail",
        "usePassportForWorkKspOtherwiseFail",
        "useSoftwareKsp",
    ),
    "androidDeviceOwnerCertificateAccessType": ("userApproval", "specificApps", "unknownFutureValue"),
    "deviceManagementApplicabilityRuleType": ("include", "exclude"),
    "windows10EditionType": (
        "windows10Enterprise",
        "windows10EnterpriseN",
        "windows10Education",
        "windows10EducationN",
        "windows10MobileEnterprise",
        "windows10HolographicEnterprise",
        "windows10Professional",
        "windows10ProfessionalN",
        "windows10ProfessionalEducation",
        "windows10ProfessionalEducationN",
        "windows10ProfessionalWorkstation",
        "windows10ProfessionalWorkstationN",
        "notConfigured",
        "windows10Home",
        "windows10HomeChina",
        "windows10HomeN",
        "windows10HomeSingleLanguage",
        "windows10Mobile",
        "windows10IoTCore",
        "windows10IoTCoreCommercial",
    ),
}
# Which enum each profile property is.
PROPERTY_ENUMS = {
    "intendedPurpose": "intendedPurpose",
    "keyStorageProvider": "keyStorageProviderOption",
    "certificateAccessType": "androidDeviceOwnerCertificateAccessType",
    "ruleType": "deviceManagementApplicabilityRuleType",
}

PROFILE_TYPES = frozenset(
    {
        "windows10ImportedPFXCertificateProfile",
        "androidDeviceOwnerImportedPFXCertificateProfile",
        "androidForWorkImportedPFXCertificateProfile",
        "androidImportedPFXCertificateProfile",
        "iosImportedPFXCertificateProfile",
        "macOSImportedPFXCertificateProfile",
    }
)
ASSIGNMENT_TARGETS = frozenset(
    {
        "groupAssignmentTarget",
        "exclusionGroupAssignmentTarget",
        "allLicensedUsersAssignmentTarget",
        "allDevicesAssignmentTarget",
    }
)


def properties(version: str, type_name: str) -> frozenset[str]:
    return PROPERTIES[version][type_name]


def check_select(version: str, type_name: str, query: Mapping[str, str]) -> list[str] | None:
    """The properties ``$select`` names, refused as Graph refuses them; ``None`` when there is no ``$select``."""
    if "$select" not in query:
        return None
    known = properties(version, type_name)
    chosen = [p.strip() for p in query["$select"].split(",") if p.strip()]
    for name in chosen:
        if name not in known:
            raise ODataError(
                400,
                "BadRequest",
                f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'.",
            )
    return chosen


def project(
    version: str, type_name: str, item: Mapping[str, Any], chosen: list[str] | None
) -> dict[str, Any]:
    """What Graph returns of ``item``: the selected properties (all of the version's if none), ``id`` always."""
    known = properties(version, type_name)
    names = set(chosen) | {"id"} if chosen is not None else known
    out = {k: v for k, v in item.items() if k in names and k in known}
    if "@odata.type" in item:
        out["@odata.type"] = item["@odata.type"]
    return out


def resolve_type(value: Any, allowed: Iterable[str]) -> str:
    """The type an ``@odata.type`` names, which must be one of ``allowed``."""
    text = str(value or "")
    name = text.removeprefix("#").removeprefix("microsoft.graph.")
    if not text.startswith("#microsoft.graph.") or name not in PROPERTIES["beta"]:
        raise ODataError(
            400,
            "BadRequest",
            f"A type named '{text.removeprefix('#')}' could not be resolved by the model. When a model is "
            "available, each type name must resolve to a valid type.",
        )
    if name not in set(allowed):
        raise ODataError(
            400,
            "BadRequest",
            f"The type 'microsoft.graph.{name}' is not compatible with the type expected here.",
        )
    return name


def check_body(
    version: str,
    type_name: str,
    body: Mapping[str, Any],
    *,
    allow_server_owned: bool = False,
    enums: Mapping[str, str] = PROPERTY_ENUMS,
) -> None:
    """Refuse properties the type does not have, navigation properties, and enum values it does not know."""
    known = properties(version, type_name)
    for name, value in body.items():
        if name.startswith("@odata."):
            continue
        if name not in known or name in NAVIGATION:
            raise ODataError(
                400,
                "BadRequest",
                f"The property '{name}' does not exist on type 'microsoft.graph.{type_name}'. Make sure to "
                "only use property names that are defined by the type or mark the type as open type.",
            )
        if name in SERVER_OWNED and not allow_server_owned and name != "id":
            raise ODataError(400, "BadRequest", f"The property '{name}' is read-only and cannot be set.")
        enum = enums.get(name)
        if enum and value is not None:
            check_enum(enum, value)


def check_enum(enum: str, value: Any) -> str:
    members = ENUMS[enum]
    match = next((m for m in members if m.lower() == str(value).lower()), None)
    if match is None:
        raise ODataError(
            400,
            "BadRequest",
            f"Cannot convert the literal '{value}' to the expected type 'microsoft.graph.{enum}'.",
        )
    return match
