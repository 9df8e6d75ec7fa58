"""How a device opens the PFX it was sent (``delivery.protocol.open_pfx``, used by the simulator)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from delivery import protocol
from delivery.tests.conftest import Tenant

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def test_the_right_password_opens_the_pfx_and_gives_its_key_and_certificate(tenant: Tenant) -> None:
    certificate = tenant.certificate(password="Pfx-Password-1")
    key, der = protocol.open_pfx(bytes(certificate.pfx_blob), b"Pfx-Password-1")
    assert hashlib.sha1(der, usedforsecurity=False).hexdigest() == certificate.thumbprint
    _, cert, _ = pkcs12.load_key_and_certificates(bytes(certificate.pfx_blob), b"Pfx-Password-1")
    assert cert is not None and key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]


def test_a_wrong_password_does_not_open_it(tenant: Tenant) -> None:
    certificate = tenant.certificate(password="Pfx-Password-1")
    with pytest.raises(ValueError) as raised:
        protocol.open_pfx(bytes(certificate.pfx_blob), b"Pfx-Password-2")
    assert not isinstance(raised.value, protocol.PfxIncomplete)


def test_a_pfx_without_the_private_key_is_incomplete(tenant: Tenant) -> None:
    certificate = tenant.certificate(password="Pfx-Password-1")
    _, cert, _ = pkcs12.load_key_and_certificates(bytes(certificate.pfx_blob), b"Pfx-Password-1")
    assert cert is not None
    only_certificate = pkcs12.serialize_key_and_certificates(
        b"c", None, cert, None, serialization.BestAvailableEncryption(b"Pfx-Password-1")
    )
    with pytest.raises(protocol.PfxIncomplete):
        protocol.open_pfx(only_certificate, b"Pfx-Password-1")


def test_a_device_process_without_django_settings_opens_the_pfx(tenant: Tenant, tmp_path: Path) -> None:
    certificate = tenant.certificate(password="Pfx-Password-1")
    path = tmp_path / "sent.pfx"
    path.write_bytes(bytes(certificate.pfx_blob))
    code = (
        "import hashlib, sys; from delivery import protocol; "
        "_, der = protocol.open_pfx(open(sys.argv[1], 'rb').read(), b'Pfx-Password-1'); "
        "print(hashlib.sha1(der).hexdigest())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, certificate.thumbprint), done.stderr
