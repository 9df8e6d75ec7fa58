from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from certs.models import Certificate, Padding, Purpose
from certs.pfx import build_graph_body, inspect_pfx
from certs.pfx.graph_body import ODATA_TYPE
from graph.records import certificate_body

pytestmark = pytest.mark.django_db

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "graph-userpfx-schema.json").read_text())
SCHEMAS = SCHEMA["components"]["schemas"]
PROPERTIES = SCHEMAS["microsoft.graph.userPFXCertificate"]["allOf"][1]["properties"]


def test_the_upload_sends_the_body_pfx_encrypt_prints_for_the_same_file(
    make_certificate: Callable[..., Certificate],
) -> None:
    certificate = make_certificate(purpose="smimeSigning")
    pfx = bytes(certificate.pfx_blob)
    printed = build_graph_body(
        inspect_pfx(pfx, None),
        pfx,
        encrypted_password=bytes(certificate.encrypted_password),
        upn=certificate.user.upn,
        provider_name=certificate.encryption_key.provider_name,
        key_name=certificate.encryption_key.key_name,
        purpose=certificate.purpose,
        padding=certificate.padding,
    )
    uploaded = certificate_body(certificate)
    assert uploaded.pop("@odata.type") == ODATA_TYPE == "#microsoft.graph.userPFXCertificate"
    assert uploaded == printed


@pytest.mark.parametrize("purpose", Purpose.values)
@pytest.mark.parametrize("padding", Padding.values)
def test_every_purpose_and_padding_a_certificate_may_hold_is_uploaded_as_graph_documents_it(
    make_certificate: Callable[..., Certificate], purpose: str, padding: str
) -> None:
    certificate = make_certificate(purpose=purpose)
    certificate.padding = padding
    body = certificate_body(certificate)
    assert "id" not in body and set(body) - {"@odata.type"} == set(PROPERTIES) - {
        "createdDateTime",
        "lastModifiedDateTime",
    }
    assert body["intendedPurpose"] in SCHEMAS["microsoft.graph.userPfxIntendedPurpose"]["enum"]
    assert body["paddingScheme"] in SCHEMAS["microsoft.graph.userPfxPaddingScheme"]["enum"]
    for name in ("startDateTime", "expirationDateTime"):
        assert re.fullmatch(PROPERTIES[name]["pattern"], body[name]), body[name]
