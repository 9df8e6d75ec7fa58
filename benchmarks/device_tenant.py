"""The device check-in benchmark's tenant: users with devices on every platform, one profile per
platform, and one certificate per user encrypted to the connector agent's key."""

from __future__ import annotations

SECRET = "pfxs_benchmark-device-enrolment-secret"


def build(count: int) -> None:
    """Users, devices and one profile per platform; certificates come once the agent's key exists."""
    from certs.models import Certificate
    from directory.models import Device, DirectoryUser, Platform, WindowsEdition
    from profiles.models import CertificateAccess, IntendedPurpose, KeyStorageProvider, Profile

    if Device.objects.filter(name__startswith="BENCH-").count() == count:
        return
    Certificate.objects.filter(upn__startswith="bench-").delete()
    Device.objects.filter(name__startswith="BENCH-").delete()
    DirectoryUser.objects.filter(upn__startswith="bench-").delete()
    users = DirectoryUser.objects.bulk_create(
        DirectoryUser(upn=f"bench-{i:06d}@contoso.example", display_name=f"Bench {i}") for i in range(count)
    )
    platforms = Platform.values
    devices = []
    for i, user in enumerate(users):
        platform = platforms[i % len(platforms)]
        device = Device(
            name=f"BENCH-{i:06d}",
            platform=platform,
            primary_user=user,
            os_edition=WindowsEdition.ENTERPRISE if platform == Platform.WINDOWS else "",
        )
        device.set_os_version("10.0.22631.1" if platform == Platform.WINDOWS else "17.1")
        devices.append(device)
    Device.objects.bulk_create(devices, batch_size=1000)
    for platform in platforms:
        Profile.objects.get_or_create(
            name=f"Bench encryption {platform}",
            defaults={
                "platform": platform,
                "intended_purpose": IntendedPurpose.SMIME_ENCRYPTION,
                "all_users": True,
                "key_storage_provider": KeyStorageProvider.SOFTWARE if platform == Platform.WINDOWS else "",
                "certificate_access": (
                    CertificateAccess.USER_APPROVAL if platform == Platform.ANDROID_FULLY_MANAGED else ""
                ),
            },
        )


def certificates(count: int, distinct: int = 40) -> None:
    """One certificate per user, its password encrypted to the agent's key; ``distinct`` PFX files reused."""
    import datetime as dt
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID
    from django.utils import timezone

    from certs.models import Certificate, EncryptionKey
    from certs.pfx import encrypt_password
    from devtools.certificates import distinct_keys, openssl3_encryption
    from directory.models import DirectoryUser

    key = EncryptionKey.objects.get(possession_proven_at__isnull=False)
    Certificate.objects.filter(upn__startswith="bench-").delete()
    public = serialization.load_pem_public_key(key.public_key_pem.encode())
    keys = distinct_keys()
    now = timezone.now()
    files = []
    for i in range(distinct):
        holder = next(keys)
        password = f"Bench-Pfx-{i}"
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Bench {i}")]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench CA")]))
            .public_key(holder.public_key())
            .serial_number(i + 1)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .sign(holder, hashes.SHA256())
        )
        pfx = pkcs12.serialize_key_and_certificates(b"b", holder, cert, None, openssl3_encryption(password))
        thumbprint = hashlib.sha1(
            cert.public_bytes(serialization.Encoding.DER), usedforsecurity=False
        ).hexdigest()
        files.append((pfx, thumbprint, encrypt_password(password, public, key.default_padding)))  # type: ignore[arg-type]
    rows = []
    for i, (pk, upn) in enumerate(
        DirectoryUser.objects.filter(upn__startswith="bench-").values_list("pk", "upn")
    ):
        pfx, thumbprint, encrypted = files[i % distinct]
        rows.append(
            Certificate(
                user_id=pk,
                upn=upn,
                thumbprint=thumbprint,
                purpose="smimeEncryption",
                subject="CN=Bench",
                issuer="CN=Bench CA",
                serial=str(i),
                not_before=now - dt.timedelta(days=1),
                not_after=now + dt.timedelta(days=365),
                key_type="rsa",
                key_size=2048,
                encryption_key=key,
                padding=key.default_padding,
                pfx_blob=pfx,
                encrypted_password=encrypted,
            )
        )
    Certificate.objects.bulk_create(rows, batch_size=500)
    assert len(rows) == count


def reset() -> None:
    """Every run starts with no enrolment, state or job, and one connector."""
    from certs.models import Certificate, EncryptionKey
    from connectors.models import Connector, ConnectorJob
    from delivery import credentials
    from delivery.models import DeliveryState, DeviceCredential
    from portal.audit import Actor

    DeliveryState.objects.all().delete()
    DeviceCredential.objects.all().delete()
    ConnectorJob.objects.all().delete()
    Connector.objects.all().delete()
    Certificate.objects.filter(upn__startswith="bench-").delete()
    EncryptionKey.objects.all().delete()
    credentials.secret_create(Actor.system("Benchmark"), value=SECRET)
