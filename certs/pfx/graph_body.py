"""The Graph ``userPFXCertificate`` request body (beta), as the connector expects it.

Built here only: the ``pfx encrypt`` command prints it and the Intune upload sends it.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from certs.pfx.encrypt import DEFAULT_PADDING, normalise_padding
from certs.pfx.inspect import Inspection, iso_utc, normalise_purpose
from certs.pfx.problems import ProblemError

# The OData annotation Graph's own examples put on a created record; the properties never include it.
ODATA_TYPE = "#microsoft.graph.userPFXCertificate"


def userpfx_body(
    *,
    thumbprint: str,
    upn: str,
    not_before: datetime,
    not_after: datetime,
    provider_name: str,
    key_name: str,
    pfx: bytes,
    encrypted_password: bytes,
    purpose: str = "unassigned",
    padding: str = DEFAULT_PADDING,
) -> dict[str, Any]:
    """Camel-case properties and enum values as documented; no ``id``; dates in UTC to the second.

    ``pfx`` is sent unmodified; ``encrypted_password`` comes from ``encrypt_password`` with the
    same ``padding``. Purpose and padding are accepted in any casing (PFXImport writes PascalCase)
    and sent as Graph's enum members; ProblemError ``bad_purpose``/``bad_padding`` for others.
    """
    if not provider_name or not key_name:
        # PFXImport can send these empty, and the connector then cannot find its key.
        raise ValueError("provider_name and key_name are required")
    return {
        "thumbprint": thumbprint.lower(),
        "intendedPurpose": normalise_purpose(purpose) or "unassigned",
        "userPrincipalName": upn,
        "startDateTime": iso_utc(not_before),
        "expirationDateTime": iso_utc(not_after),
        "providerName": provider_name,
        "keyName": key_name,
        "paddingScheme": normalise_padding(padding),
        "encryptedPfxBlob": base64.b64encode(pfx).decode("ascii"),
        "encryptedPfxPassword": base64.b64encode(encrypted_password).decode("ascii"),
    }


def build_graph_body(
    inspection: Inspection,
    pfx: bytes,
    *,
    encrypted_password: bytes,
    upn: str,
    provider_name: str,
    key_name: str,
    purpose: str = "unassigned",
    padding: str = DEFAULT_PADDING,
) -> dict[str, Any]:
    """:func:`userpfx_body` for an inspected file. Raises ProblemError with the first error if the
    inspection found any."""
    if inspection.errors:
        raise ProblemError(inspection.errors[0].code, inspection.errors[0].message)
    if not inspection.thumbprint or not inspection.not_before or not inspection.not_after:
        raise ProblemError("no_certificate")
    return userpfx_body(
        thumbprint=inspection.thumbprint,
        upn=upn,
        not_before=inspection.not_before,
        not_after=inspection.not_after,
        provider_name=provider_name,
        key_name=key_name,
        pfx=pfx,
        encrypted_password=encrypted_password,
        purpose=purpose,
        padding=padding,
    )
