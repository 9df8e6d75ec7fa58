"""A PFX imported through the certificate pipeline, then uploaded: the body Intune receives is the file as given."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from certs import imports, lifecycle
from certs.keys import key_add
from certs.models import Certificate, GraphState
from devtools.emulator.server import Emulator
from directory.models import DirectoryUser
from graph import uploads
from graph.client import GraphClient
from graph.models import UploadRecord
from portal.audit import Actor
from portal.models import ScopeTag

pytestmark = pytest.mark.django_db


def _pfx_for(upn: str, password: str) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Megan O'Neil")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(upn)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return pkcs12.serialize_key_and_certificates(
        None, key, cert, None, serialization.BestAvailableEncryption(password.encode())
    )


def test_an_imported_pfx_is_uploaded_exactly_as_given_for_a_user_with_a_quote(
    emulator: Emulator, portal_graph: GraphClient
) -> None:
    user = next(u for u in emulator.state.users.values() if "o'neil" in u["userPrincipalName"])
    DirectoryUser.objects.create(
        object_id=user["id"], upn=user["userPrincipalName"], display_name=user["displayName"]
    )
    connector = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = connector.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    actor = Actor.system("test")
    key = key_add(
        actor,
        data=public_pem,
        provider_name="Microsoft Software Key Storage Provider",
        key_name="PFXEncryptionKey",
        default_padding="oaepSha512",
        make_default=True,
        tags=[ScopeTag.default()],
    )
    pfx = _pfx_for(user["userPrincipalName"], "Import-Me-1")
    entry = imports.Entry("megan.pfx", pfx, "Import-Me-1", user["userPrincipalName"], "smimeEncryption")
    item = lifecycle.certificate_import(actor, entry=entry, key=key, tags=[ScopeTag.default()])
    assert item.certificate_id is not None, item.problem_message
    certificate = Certificate.objects.get(pk=item.certificate_id)

    # What the receiver of certs.signals.certificates_stored does once the tenant is connected.
    assert uploads.queue_uploads([certificate.pk]) == 1
    record = UploadRecord.objects.get(certificate=certificate)
    assert uploads.upload(record.pk, client=portal_graph) == "synced"

    stored = emulator.state.pfx[record.graph_id]
    assert record.graph_id == f"{user['id'].replace('-', '')}-{certificate.thumbprint}"
    assert base64.b64decode(stored["encryptedPfxBlob"]) == pfx
    password = connector.decrypt(
        base64.b64decode(stored["encryptedPfxPassword"]),
        padding.OAEP(mgf=padding.MGF1(hashes.SHA512()), algorithm=hashes.SHA512(), label=None),
    )
    assert password == b"Import-Me-1"
    assert (stored["providerName"], stored["keyName"], stored["paddingScheme"]) == (
        "Microsoft Software Key Storage Provider",
        "PFXEncryptionKey",
        "oaepSha512",
    )
    certificate.refresh_from_db()
    assert certificate.graph_state == GraphState.SYNCED
