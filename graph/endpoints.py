"""Every Graph endpoint the portal calls, with the version it is called on and the properties it
selects: each one checked against Microsoft's published schema for that version (docs/graph-endpoints.md).
"""

from __future__ import annotations

# v1.0 user, group and managedDevice (managedDevice has no deviceType on v1.0).
USER_FIELDS = "id,userPrincipalName,displayName,givenName,surname,mail,proxyAddresses,department,jobTitle,accountEnabled"
GROUP_FIELDS = "id,displayName,description"
DEVICE_FIELDS = (
    "id,azureADDeviceId,deviceName,operatingSystem,osVersion,deviceEnrollmentType,manufacturer,model,"
    "serialNumber,managedDeviceOwnerType,lastSyncDateTime,userId"
)
# v1.0 managedDevice: Intune's device id beside Entra's, to match what Intune reports per device.
DEVICE_ID_FIELDS = "id,azureADDeviceId"
# beta managedDevice: the properties that tell the Android enrollment kinds apart.
DEVICE_KIND_FIELDS = "id,deviceType,deviceEnrollmentType"

PFX_COLLECTION = "/beta/deviceManagement/userPfxCertificates"
CONFIGURATIONS = "/beta/deviceManagement/deviceConfigurations"
SCOPE_TAGS = "/beta/deviceManagement/roleScopeTags"
CONNECTOR_DETAILS = "/beta/deviceManagement/certificateConnectorDetails"
NDES_CONNECTORS = "/beta/deviceManagement/ndesConnectors"

# deviceConfiguration (beta): enough to find the portal's profiles among all of a tenant's.
CONFIGURATION_LIST_FIELDS = "id,displayName,lastModifiedDateTime,version"
SCOPE_TAG_FIELDS = "id,displayName,isBuiltIn"
CONNECTOR_DETAIL_FIELDS = (
    "id,connectorName,machineName,connectorVersion,enrollmentDateTime,lastCheckinDateTime"
)
NDES_FIELDS = "id,displayName,machineName,connectorVersion,enrolledDateTime,lastConnectionDateTime,state"
DEVICE_STATUS_FIELDS = (
    "id,deviceDisplayName,userName,userPrincipalName,deviceModel,platform,status,lastReportedDateTime"
)
USER_STATUS_FIELDS = "id,userDisplayName,userPrincipalName,devicesCount,status,lastReportedDateTime"
OVERVIEW_FIELDS = (
    "id,pendingCount,notApplicableCount,successCount,errorCount,failedCount,conflictCount,lastUpdateDateTime,"
    "configurationVersion"
)
CERTIFICATE_STATE_FIELDS = (
    "id,devicePlatform,deviceDisplayName,userDisplayName,certificateThumbprint,certificateSerialNumber,"
    "certificateIssuer,certificateExpirationDateTime,certificateIssuanceState,certificateRevokeStatus,"
    "certificateIssuanceDateTime,certificateErrorCode"
)

# (version, entity type, $select) of every select above: the schema test walks this list.
SELECTS: tuple[tuple[str, str, str], ...] = (
    ("v1.0", "user", USER_FIELDS),
    ("v1.0", "group", GROUP_FIELDS),
    ("v1.0", "managedDevice", DEVICE_FIELDS),
    ("v1.0", "managedDevice", DEVICE_ID_FIELDS),
    ("beta", "managedDevice", DEVICE_KIND_FIELDS),
    ("beta", "deviceConfiguration", CONFIGURATION_LIST_FIELDS),
    ("beta", "roleScopeTag", SCOPE_TAG_FIELDS),
    ("beta", "certificateConnectorDetails", CONNECTOR_DETAIL_FIELDS),
    ("beta", "ndesConnector", NDES_FIELDS),
    ("beta", "deviceConfigurationDeviceStatus", DEVICE_STATUS_FIELDS),
    ("beta", "deviceConfigurationUserStatus", USER_STATUS_FIELDS),
    ("beta", "deviceConfigurationDeviceOverview", OVERVIEW_FIELDS),
    ("beta", "managedDeviceCertificateState", CERTIFICATE_STATE_FIELDS),
)
