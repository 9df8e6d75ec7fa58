"""A portal certificate as Intune records it: the record's id, the body that creates it, and how a
record read back from Intune differs from the certificate."""

from __future__ import annotations

import datetime as dt
from typing import Any

from certs.models import Certificate
from certs.pfx.graph_body import ODATA_TYPE, userpfx_body
from graph.client import REDACTED_BLOB, GraphClient

COMPARED_FIELDS = (
    "thumbprint",
    "intendedPurpose",
    "userPrincipalName",
    "providerName",
    "keyName",
    "paddingScheme",
    "startDateTime",
    "expirationDateTime",
)


def graph_id(certificate: Certificate) -> str:
    return GraphClient.pfx_id(certificate.user.object_id, certificate.thumbprint)


def certificate_body(certificate: Certificate) -> dict[str, Any]:
    key = certificate.encryption_key
    return {
        "@odata.type": ODATA_TYPE,
        **userpfx_body(
            thumbprint=certificate.thumbprint,
            upn=certificate.user.upn,
            not_before=certificate.not_before,
            not_after=certificate.not_after,
            provider_name=key.provider_name,
            key_name=key.key_name,
            pfx=bytes(certificate.pfx_blob),
            encrypted_password=bytes(certificate.encrypted_password),
            purpose=certificate.purpose,
            padding=certificate.padding,
        ),
    }


def _same(name: str, ours: Any, theirs: Any) -> bool:
    if name.endswith("DateTime"):
        try:
            return dt.datetime.fromisoformat(str(ours).replace("Z", "+00:00")) == dt.datetime.fromisoformat(
                str(theirs).replace("Z", "+00:00")
            )
        except ValueError:
            return False
    # Enum names and UPNs compare without case (the service accepts either casing).
    return str(ours or "").lower() == str(theirs or "").lower()


def differences(certificate: Certificate, record: dict[str, Any]) -> list[dict[str, Any]]:
    body = certificate_body(certificate)
    return [
        {"field": name, "portal": body[name], "intune": record.get(name)}
        for name in COMPARED_FIELDS
        if not _same(name, body[name], record.get(name))
    ]


def read_back_problems(certificate: Certificate, record: dict[str, Any]) -> list[str]:
    problems = [
        f"{d['field']} is {d['intune']!r}, expected {d['portal']!r}" for d in differences(certificate, record)
    ]
    # Secrets are write-only: Graph returns one zero byte and an empty string, never what we sent.
    if record.get("encryptedPfxBlob") not in (REDACTED_BLOB, "", None):
        problems.append("encryptedPfxBlob came back unredacted")
    if record.get("encryptedPfxPassword") not in ("", None):
        problems.append("encryptedPfxPassword came back unredacted")
    return problems
