"""Which properties Microsoft Graph knows, per version and type: what the emulator accepts and returns.

Generated from the models of Microsoft's Graph SDKs for Python (property names as each model
deserializes them, base types included): v1.0 from microsoftgraph/msgraph-sdk-python at
221856b7b27fc95c5d31b797483072ee97b0f0b2, beta from microsoftgraph/msgraph-beta-sdk-python at
3cbc17770cab06981fe2b80cc3618800b94d0fe6. docs/graph-endpoints.md lists which of them the portal uses.
"""

from __future__ import annotations

_V1 = {
    "user": (
        "aboutMe accountEnabled activities adhocCalls ageGroup agreementAcceptances appRoleAssignments "
        "assignedLicenses assignedPlans authentication authorizationInfo birthday businessPhones calendar "
        "calendarGroups calendarView calendars chats city cloudClipboard cloudPCs companyName "
        "consentProvidedForMinor contactFolders contacts country createdDateTime createdObjects "
        "creationType customSecurityAttributes dataSecurityAndGovernance deletedDateTime department "
        "deviceEnrollmentLimit deviceManagementTroubleshootingEvents directReports displayName drive "
        "drives employeeExperience employeeHireDate employeeId employeeLeaveDateTime employeeOrgData "
        "employeeType events extensions externalUserState externalUserStateChangeDateTime faxNumber "
        "followedSites givenName hireDate id identities identityParentId imAddresses "
        "inferenceClassification insights interests isManagementRestricted isResourceAccount jobTitle "
        "joinedTeams lastPasswordChangeDateTime legalAgeGroupClassification licenseAssignmentStates "
        "licenseDetails mail mailFolders mailNickname mailboxSettings managedAppRegistrations "
        "managedDevices manager memberOf messages mobilePhone mySite oauth2PermissionGrants "
        "officeLocation onPremisesDistinguishedName onPremisesDomainName onPremisesExtensionAttributes "
        "onPremisesImmutableId onPremisesLastSyncDateTime onPremisesProvisioningErrors "
        "onPremisesSamAccountName onPremisesSecurityIdentifier onPremisesSyncBehavior "
        "onPremisesSyncEnabled onPremisesUserPrincipalName onenote onlineMeetings otherMails outlook "
        "ownedDevices ownedObjects passwordPolicies passwordProfile pastProjects people permissionGrants "
        "photo photos planner postalCode preferredDataLocation preferredLanguage preferredName presence "
        "print provisionedPlans proxyAddresses registeredDevices responsibilities schools "
        "scopedRoleMemberOf securityIdentifier serviceProvisioningErrors settings showInAddressList "
        "signInActivity signInSessionsValidFromDateTime skills solutions sponsorOf sponsors state "
        "streetAddress surname teamwork todo transitiveMemberOf usageLocation userPrincipalName userType "
    ),
    "group": (
        "acceptedSenders accessType allowExternalSenders appRoleAssignments assignedLabels "
        "assignedLicenses autoSubscribeNewMembers calendar calendarView classification conversations "
        "createdDateTime createdOnBehalfOf deletedDateTime description displayName drive drives events "
        "expirationDateTime extensions groupLifecyclePolicies groupTypes hasMembersWithLicenseErrors "
        "hideFromAddressLists hideFromOutlookClients id infoCatalogs isArchived isAssignableToRole "
        "isFavorite isManagementRestricted isSubscribedByMail licenseProcessingState mail mailEnabled "
        "mailNickname memberOf members membersWithLicenseErrors membershipRule "
        "membershipRuleProcessingState onPremisesDomainName onPremisesExtensionAttributes "
        "onPremisesLastSyncDateTime onPremisesNetBiosName onPremisesProvisioningErrors "
        "onPremisesSamAccountName onPremisesSecurityIdentifier onPremisesSyncBehavior "
        "onPremisesSyncEnabled onenote organizationId owners permissionGrants photo photos planner "
        "preferredDataLocation preferredLanguage proxyAddresses rejectedSenders renewedDateTime "
        "resourceBehaviorOptions resourceProvisioningOptions securityEnabled securityIdentifier "
        "serviceProvisioningErrors settings sites team theme threads transitiveMemberOf transitiveMembers "
        "uniqueName unseenConversationsCount unseenCount unseenMessagesCount visibility "
        "welcomeMessageEnabled "
    ),
    "managedDevice": (
        "activationLockBypassCode androidSecurityPatchLevel azureADDeviceId azureADRegistered "
        "complianceGracePeriodExpirationDateTime complianceState "
        "configurationManagerClientEnabledFeatures deviceActionResults deviceCategory "
        "deviceCategoryDisplayName deviceCompliancePolicyStates deviceConfigurationStates "
        "deviceEnrollmentType deviceHealthAttestationState deviceName deviceRegistrationState "
        "easActivated easActivationDateTime easDeviceId emailAddress enrolledDateTime "
        "enrollmentProfileName ethernetMacAddress exchangeAccessState exchangeAccessStateReason "
        "exchangeLastSuccessfulSyncDateTime freeStorageSpaceInBytes iccid id imei isEncrypted "
        "isSupervised jailBroken lastSyncDateTime logCollectionRequests managedDeviceName "
        "managedDeviceOwnerType managementAgent managementCertificateExpirationDate managementState "
        "manufacturer meid model notes operatingSystem osVersion partnerReportedThreatState phoneNumber "
        "physicalMemoryInBytes remoteAssistanceSessionErrorDetails remoteAssistanceSessionUrl "
        "requireUserEnrollmentApproval serialNumber subscriberCarrier totalStorageSpaceInBytes udid "
        "userDisplayName userId userPrincipalName users wiFiMacAddress windowsProtectionState "
    ),
}

_BETA = {
    "userPFXCertificate": (
        "createdDateTime encryptedPfxBlob encryptedPfxPassword expirationDateTime id intendedPurpose "
        "keyName lastModifiedDateTime paddingScheme providerName startDateTime thumbprint "
        "userPrincipalName "
    ),
    "deviceConfiguration": (
        "assignments createdDateTime description deviceManagementApplicabilityRuleDeviceMode "
        "deviceManagementApplicabilityRuleOsEdition deviceManagementApplicabilityRuleOsVersion "
        "deviceSettingStateSummaries deviceStatusOverview deviceStatuses displayName groupAssignments id "
        "lastModifiedDateTime roleScopeTagIds supportsScopeTags userStatusOverview userStatuses version "
    ),
    "windows10ImportedPFXCertificateProfile": (
        "assignments certificateValidityPeriodScale certificateValidityPeriodValue createdDateTime "
        "description deviceManagementApplicabilityRuleDeviceMode "
        "deviceManagementApplicabilityRuleOsEdition deviceManagementApplicabilityRuleOsVersion "
        "deviceSettingStateSummaries deviceStatusOverview deviceStatuses displayName groupAssignments id "
        "intendedPurpose keyStorageProvider lastModifiedDateTime managedDeviceCertificateStates "
        "renewalThresholdPercentage roleScopeTagIds subjectAlternativeNameType subjectNameFormat "
        "supportsScopeTags userStatusOverview userStatuses version "
    ),
    "androidDeviceOwnerImportedPFXCertificateProfile": (
        "assignments certificateAccessType certificateValidityPeriodScale certificateValidityPeriodValue "
        "createdDateTime description deviceManagementApplicabilityRuleDeviceMode "
        "deviceManagementApplicabilityRuleOsEdition deviceManagementApplicabilityRuleOsVersion "
        "deviceSettingStateSummaries deviceStatusOverview deviceStatuses displayName extendedKeyUsages "
        "groupAssignments id intendedPurpose lastModifiedDateTime managedDeviceCertificateStates "
        "renewalThresholdPercentage roleScopeTagIds rootCertificate silentCertificateAccessDetails "
        "subjectAlternativeNameType subjectNameFormat supportsScopeTags userStatusOverview userStatuses "
        "version "
    ),
    "androidForWorkImportedPFXCertificateProfile": (
        "assignments certificateValidityPeriodScale certificateValidityPeriodValue createdDateTime "
        "description deviceManagementApplicabilityRuleDeviceMode "
        "deviceManagementApplicabilityRuleOsEdition deviceManagementApplicabilityRuleOsVersion "
        "deviceSettingStateSummaries deviceStatusOverview deviceStatuses displayName extendedKeyUsages "
        "groupAssignments id intendedPurpose lastModifiedDateTime managedDeviceCertificateStates "
        "renewalThresholdPercentage roleScopeTagIds rootCertificate subjectAlternativeNameType "
        "subjectNameFormat supportsScopeTags userStatusOverview userStatuses version "
    ),
    "androidImportedPFXCertificateProfile": (
        "assignments certificateValidityPeriodScale certificateValidityPeriodValue createdDateTime "
        "description deviceManagementApplicabilityRuleDeviceMode "
        "deviceManagementApplicabilityRuleOsEdition deviceManagementApplicabilityRuleOsVersion "
        "deviceSettingStateSummaries deviceStatusOverview deviceStatuses displayName extendedKeyUsages "
        "groupAssignments id intendedPurpose lastModifiedDateTime managedDeviceCertificateStates "
        "renewalThresholdPercentage roleScopeTagIds rootCertificate subjectAlternativeNameType "
        "subjectNameFormat supportsScopeTags userStatusOverview userStatuses version "
    ),
    "iosImportedPFXCertificateProfile": (
        "assignments createdDateTime description deviceManagementApplicabilityRuleDeviceMode "
        "deviceManagementApplicabilityRuleOsEdition deviceManagementApplicabilityRuleOsVersion "
        "deviceSettingStateSummaries deviceStatusOverview deviceStatuses displayName groupAssignments id "
        "intendedPurpose lastModifiedDateTime managedDeviceCertificateStates roleScopeTagIds "
        "supportsScopeTags userStatusOverview userStatuses version "
    ),
    "macOSImportedPFXCertificateProfile": (
        "assignments certificateValidityPeriodScale certificateValidityPeriodValue createdDateTime "
        "deploymentChannel description deviceManagementApplicabilityRuleDeviceMode "
        "deviceManagementApplicabilityRuleOsEdition deviceManagementApplicabilityRuleOsVersion "
        "deviceSettingStateSummaries deviceStatusOverview deviceStatuses displayName groupAssignments id "
        "intendedPurpose lastModifiedDateTime managedDeviceCertificateStates renewalThresholdPercentage "
        "roleScopeTagIds subjectAlternativeNameType subjectNameFormat supportsScopeTags "
        "userStatusOverview userStatuses version "
    ),
    "deviceConfigurationAssignment": ("id intent source sourceId target "),
    "groupAssignmentTarget": (
        "deviceAndAppManagementAssignmentFilterId deviceAndAppManagementAssignmentFilterType groupId "
    ),
    "exclusionGroupAssignmentTarget": (
        "deviceAndAppManagementAssignmentFilterId deviceAndAppManagementAssignmentFilterType groupId "
    ),
    "allLicensedUsersAssignmentTarget": (
        "deviceAndAppManagementAssignmentFilterId deviceAndAppManagementAssignmentFilterType "
    ),
    "allDevicesAssignmentTarget": (
        "deviceAndAppManagementAssignmentFilterId deviceAndAppManagementAssignmentFilterType "
    ),
    "roleScopeTag": ("assignments description displayName id isBuiltIn "),
    "deviceManagementApplicabilityRuleOsEdition": ("name osEditionTypes ruleType "),
    "deviceManagementApplicabilityRuleOsVersion": ("maxOSVersion minOSVersion name ruleType "),
    "deviceConfigurationDeviceStatus": (
        "complianceGracePeriodExpirationDateTime deviceDisplayName deviceModel id lastReportedDateTime "
        "platform status userName userPrincipalName "
    ),
    "deviceConfigurationUserStatus": (
        "devicesCount id lastReportedDateTime status userDisplayName userPrincipalName "
    ),
    "deviceConfigurationDeviceOverview": (
        "configurationVersion conflictCount errorCount failedCount id lastUpdateDateTime "
        "notApplicableCount notApplicablePlatformCount pendingCount successCount "
    ),
    "managedDeviceCertificateState": (
        "certificateEnhancedKeyUsage certificateErrorCode certificateExpirationDateTime "
        "certificateIssuanceDateTime certificateIssuanceState certificateIssuer certificateKeyLength "
        "certificateKeyStorageProvider certificateKeyUsage certificateLastIssuanceStateChangedDateTime "
        "certificateProfileDisplayName certificateRevokeStatus certificateSerialNumber "
        "certificateSubjectAlternativeNameFormat certificateSubjectAlternativeNameFormatString "
        "certificateSubjectNameFormat certificateSubjectNameFormatString certificateThumbprint "
        "certificateValidityPeriod certificateValidityPeriodUnits deviceDisplayName devicePlatform id "
        "lastCertificateStateChangeDateTime userDisplayName "
    ),
    "certificateConnectorDetails": (
        "connectorName connectorVersion enrollmentDateTime id lastCheckinDateTime machineName "
    ),
    "ndesConnector": (
        "connectorVersion displayName enrolledDateTime id lastConnectionDateTime machineName "
        "roleScopeTagIds state "
    ),
    "managedDevice": (
        "aadRegistered activationLockBypassCode androidSecurityPatchLevel "
        "assignmentFilterEvaluationStatusDetails autopilotEnrolled azureADDeviceId azureADRegistered "
        "azureActiveDirectoryDeviceId bootstrapTokenEscrowed chassisType chromeOSDeviceInfo "
        "cloudPcRemoteActionResults complianceGracePeriodExpirationDateTime complianceState "
        "configurationManagerClientEnabledFeatures configurationManagerClientHealthState "
        "configurationManagerClientInformation detectedApps deviceActionResults deviceCategory "
        "deviceCategoryDisplayName deviceCompliancePolicyStates deviceConfigurationStates "
        "deviceEnrollmentType deviceFirmwareConfigurationInterfaceManaged deviceHealthAttestationState "
        "deviceHealthScriptStates deviceName deviceRegistrationState deviceType easActivated "
        "easActivationDateTime easDeviceId emailAddress enrolledByUserPrincipalName enrolledDateTime "
        "enrollmentProfileName ethernetMacAddress exchangeAccessState exchangeAccessStateReason "
        "exchangeLastSuccessfulSyncDateTime freeStorageSpaceInBytes hardwareInformation iccid id imei "
        "isEncrypted isSupervised jailBroken joinType lastSyncDateTime logCollectionRequests "
        "lostModeState managedDeviceMobileAppConfigurationStates managedDeviceName managedDeviceOwnerType "
        "managementAgent managementCertificateExpirationDate managementFeatures managementState "
        "manufacturer meid model notes operatingSystem osVersion ownerType partnerReportedThreatState "
        "phoneNumber physicalMemoryInBytes preferMdmOverGroupPolicyAppliedDateTime processorArchitecture "
        "remoteAssistanceSessionErrorDetails remoteAssistanceSessionUrl requireUserEnrollmentApproval "
        "retireAfterDateTime roleScopeTagIds securityBaselineStates securityPatchLevel serialNumber "
        "skuFamily skuNumber specificationVersion subscriberCarrier totalStorageSpaceInBytes udid "
        "userDisplayName userId userPrincipalName users usersLoggedOn wiFiMacAddress "
        "windowsActiveMalwareCount windowsProtectionState windowsRemediatedMalwareCount "
    ),
    "androidDeviceOwnerSilentCertificateAccess": ("packageId "),
}
