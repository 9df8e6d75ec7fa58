"""The shapes the API reads and answers, as the OpenAPI description shows them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from ninja import Schema
from pydantic import model_validator


class Input(Schema):
    """What a client sends: no NUL character in any text (no database can store one), and every
    time with a zone is read in UTC (PostgreSQL takes zone offsets up to 15:59 only)."""

    @model_validator(mode="after")
    def _storable(self) -> Input:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, (str, datetime, list, tuple)):
                setattr(self, name, _storable(value, name))
        return self


def _storable(value: Any, name: str) -> Any:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{name} contains a NUL character.")
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:
            raise ValueError(f"{name} is out of range.") from exc
    if isinstance(value, (list, tuple)):
        return type(value)(_storable(item, name) for item in value)
    return value


class CertificateOut(Schema):
    code: uuid.UUID
    upn: str
    user_object_id: uuid.UUID
    thumbprint: str
    purpose: str
    subject: str
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    key_type: str
    key_size: int | None
    encryption_key: uuid.UUID
    padding: str
    import_batch: uuid.UUID | None
    intune_state: str
    intune_error: str
    created_at: datetime


class CertificatePage(Schema):
    items: list[CertificateOut]
    next_cursor: str | None


class ImportRowOut(Schema):
    position: int
    filename: str
    upn: str
    purpose: str
    state: str
    problem_code: str
    problem_message: str
    warnings: list[str]
    thumbprint: str
    certificate: uuid.UUID | None
    retryable: bool


class ImportSummaryOut(Schema):
    code: uuid.UUID
    kind: str
    state: str
    dry_run: bool
    on_duplicate: str
    encryption_key: uuid.UUID
    total: int
    created_by: str
    created_at: datetime
    finished_at: datetime | None
    promoted_from: uuid.UUID | None


class ImportOut(ImportSummaryOut):
    # Rows per state, and how many are finished.
    counts: dict[str, int]
    finished: int


class ImportDetailOut(ImportOut):
    rows: list[ImportRowOut]
    next_cursor: str | None


class ImportPage(Schema):
    # Without the rows' counts, which cost a scan of each import's rows: GET /imports/{code} has them.
    items: list[ImportSummaryOut]
    next_cursor: str | None


class RetryIn(Input):
    # Row position -> the new password. Only rows a password can fix are taken.
    passwords: dict[int, str]


class CountOut(Schema):
    count: int


class KeyOut(Schema):
    code: uuid.UUID
    provider_name: str
    key_name: str
    size: int
    fingerprint: str
    default_padding: str
    is_default: bool
    source: str
    possession_proven: bool
    public_key_pem: str
    created_at: datetime


class ConnectorOut(Schema):
    code: uuid.UUID
    name: str
    host_name: str
    version: str
    state: str
    status: str
    status_reason: str
    last_seen: datetime | None
    clock_skew_seconds: float | None


class GroupRefOut(Schema):
    object_id: uuid.UUID
    display_name: str


class ProfileOut(Schema):
    code: uuid.UUID
    name: str
    description: str
    platform: str
    profile_type: str
    intended_purpose: str
    key_storage_provider: str
    certificate_access: str
    silent_access_packages: list[str]
    all_users: bool
    all_devices: bool
    include_groups: list[GroupRefOut]
    exclude_groups: list[GroupRefOut]
    scope_tags: list[str]
    created_at: datetime
    updated_at: datetime


class ProfileCreateIn(Input):
    platform: str
    name: str
    intended_purpose: str
    description: str = ""
    key_storage_provider: str = ""
    certificate_access: str = ""
    silent_access_packages: list[str] = []
    scope_tags: list[str] = []
    all_users: bool = False
    all_devices: bool = False
    include_groups: list[uuid.UUID] = []
    exclude_groups: list[uuid.UUID] = []


class ProfileUpdateIn(Input):
    name: str | None = None
    description: str | None = None
    certificate_access: str | None = None
    silent_access_packages: list[str] | None = None


class AssignmentsIn(Input):
    all_users: bool = False
    all_devices: bool = False
    include_groups: list[uuid.UUID] = []
    exclude_groups: list[uuid.UUID] = []


class ProfileStatusOut(Schema):
    devices: dict[str, int]
    users: dict[str, int]
    reasons: dict[str, int]


class DeviceStateOut(Schema):
    device_id: uuid.UUID
    device_name: str
    platform: str
    profile: uuid.UUID
    profile_name: str
    status: str
    error_code: str
    error_message: str
    source: str
    certificate_thumbprint: str
    changed_at: datetime
    reported_at: datetime | None


class UserOut(Schema):
    object_id: uuid.UUID
    upn: str
    display_name: str
    mail: str
    account_enabled: bool
    certificates: list[CertificateOut]
    device_states: list[DeviceStateOut]


class AuditEventOut(Schema):
    code: uuid.UUID
    occurred_at: datetime
    actor_type: str
    actor_name: str
    activity: str
    operation: str
    category: str
    result: str
    correlation_id: uuid.UUID
    resources: list[dict[str, object]]
    resource_count: int


class AuditPage(Schema):
    # Each event lists at most its first three resources here; GET /audit-events/{code} has them all.
    items: list[AuditEventOut]
    next_cursor: str | None
