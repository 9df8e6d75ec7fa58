"""The Graph ``userPFXCertificate`` request body (beta), as the connector expects it."""

from __future__ import annotations

import base64
from typing import Any

from certs.pfx.encrypt import DEFAULT_PADDING, normalise_padding
from certs.pfx.inspect import Inspection, iso_utc, normalise_purpose
from certs.pfx.problems import ProblemError


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
    """Camel-case properties and enum values as documented; no ``id``; dates in UTC.

    ``pfx`` is sent unmodified; ``encrypted_password`` comes from ``encrypt_password``
    with the same ``padding``. Raises ProblemError with the first error if the
    inspection found any.
    """
    if inspection.errors:
        raise ProblemError(inspection.errors[0].code, inspection.errors[0].message)
    if not inspection.thumbprint or not inspection.not_before or not inspection.not_after:
        raise ProblemError("no_certificate")
    if not provider_name or not key_name:
        # PFXImport can send these empty, and the connector then cannot find its key.
        raise ValueError("provider_name and key_name are required")
    return {
        "thumbprint": inspection.thumbprint.lower(),
        "intendedPurpose": normalise_purpose(purpose) or "unassigned",
        "userPrincipalName": upn,
        "startDateTime": iso_utc(inspection.not_before),
        "expirationDateTime": iso_utc(inspection.not_after),
        "providerName": provider_name,
        "keyName": key_name,
        "paddingScheme": normalise_padding(padding),
        "encryptedPfxBlob": base64.b64encode(pfx).decode("ascii"),
        "encryptedPfxPassword": base64.b64encode(encrypted_password).decode("ascii"),
    }
