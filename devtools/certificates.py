"""Demo certificates for the Contoso tenant, imported through the real bulk pipeline.

The files are made here (a demo CA, a key of its own for every certificate) and go through the same batch,
workers and Graph upload as an admin's import, so the certificate list, the expiry view, a batch
page with failed rows and the Intune upload all have something to show. Seeding twice creates
nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.utils import timezone

from certs import imports
from certs.models import EncryptionKey, ImportBatch, Purpose
from certs.pfx import inspect as pfx_inspect
from directory.models import DirectoryUser
from portal.audit import Actor
from portal.models import ScopeTag

ACTOR = "Demo data"
SEED = 20261125
USERS = 48
UPN_OID = x509.ObjectIdentifier(pfx_inspect.UPN_OID)
# Days until expiry for the first users: a few due this week, this month and next month,
# so Home's expiry counts and the reminders have something to show; the rest run for years.
SOON = (3, 6, 12, 20, 27, 35, 44, 52, 58)


class _Issuer:
    def __init__(self, rng: random.Random) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Contoso Ltd"),
                x509.NameAttribute(NameOID.COMMON_NAME, "Contoso Issuing CA 1"),
            ]
        )
        self.user_keys = distinct_keys()
        self.rng = rng

    def pfx(self, user: DirectoryUser, password: str, *, purpose: str, not_after: dt.datetime) -> bytes:
        key = next(self.user_keys)
        eku = ExtendedKeyUsageOID.EMAIL_PROTECTION
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user.display_name)]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            # Two-year certificates, issued at some point in the past.
            .not_valid_before(not_after - dt.timedelta(days=730))
            .not_valid_after(not_after)
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.RFC822Name(user.mail or user.upn),
                        x509.OtherName(UPN_OID, core.UTF8String(user.upn).dump()),
                    ]
                ),
                critical=False,
            )
            .add_extension(
                x509.KeyUsage(
                    digital_signature=purpose == Purpose.SMIME_SIGNING,
                    content_commitment=False,
                    key_encipherment=purpose != Purpose.SMIME_SIGNING,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        name = user.upn.split("@")[0].encode()
        return pkcs12.serialize_key_and_certificates(
            name, key, certificate, None, openssl3_encryption(password)
        )


def distinct_keys() -> Iterator[rsa.RSAPrivateKey]:
    """RSA-2048 keys, each with a modulus of its own, made quickly for test and demo data.

    A key pair belongs to one person (an import refuses a key another user's certificate holds),
    so every demo certificate needs its own key, and generating each (tens of milliseconds, or
    minutes for a benchmark's 10,000) would dominate. Instead each generated key gives two
    primes, and every pair of primes seen so far makes a distinct modulus: n primes, n(n-1)/2 keys.
    Keys that share primes can be factored from each other: fine for made-up users, never for real.
    The primes come from keys the library generated and checked, so the new keys skip validation.
    """
    primes: list[int] = []
    exponent = 65537
    while True:
        numbers = rsa.generate_private_key(public_exponent=exponent, key_size=2048).private_numbers()
        for p in (numbers.p, numbers.q):
            for q in primes:
                d = pow(exponent, -1, (p - 1) * (q - 1))
                yield rsa.RSAPrivateNumbers(
                    p,
                    q,
                    d,
                    rsa.rsa_crt_dmp1(d, p),
                    rsa.rsa_crt_dmq1(d, q),
                    rsa.rsa_crt_iqmp(p, q),
                    rsa.RSAPublicNumbers(exponent, p * q),
                ).private_key(unsafe_skip_rsa_key_validation=True)
            primes.append(p)


def openssl3_encryption(password: str) -> serialization.KeySerializationEncryption:
    """What OpenSSL 3 and current Windows exports write: PBES2 with AES-256, SHA-256 MAC, 2048 rounds."""
    return (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )


def entries(now: dt.datetime | None = None) -> list[imports.Entry]:
    """The demo's bulk import: one encryption certificate per user, signing certificates for some,
    an older one kept beside its successor, and two rows that fail the way real files do."""
    now = now or timezone.now()
    rng = random.Random(SEED)
    issuer = _Issuer(rng)
    users = list(
        DirectoryUser.objects.filter(removed_at__isnull=True, account_enabled=True).order_by("upn")[:USERS]
    )
    out: list[imports.Entry] = []

    def add(user: DirectoryUser, purpose: str, days_left: int, *, typo: bool = False, tag: str = "") -> None:
        password = f"{rng.randrange(10**8):08d}-Export"
        data = issuer.pfx(user, password, purpose=purpose, not_after=now + dt.timedelta(days=days_left))
        stem = user.upn.split("@")[0]
        out.append(
            imports.Entry(
                filename=f"{stem}{tag}-{'sign' if purpose == Purpose.SMIME_SIGNING else 'enc'}.pfx",
                data=data,
                password=password + ("x" if typo else ""),
                upn=user.upn,
                purpose=purpose,
            )
        )

    for i, user in enumerate(users):
        days_left = SOON[i] if i < len(SOON) else rng.randrange(90, 730)
        add(user, Purpose.SMIME_ENCRYPTION, days_left)
        if i % 4 == 1:
            add(user, Purpose.SMIME_SIGNING, rng.randrange(120, 730))
        if i % 12 == 5:
            # The certificate this one replaces: kept, so older mail can still be decrypted.
            add(user, Purpose.SMIME_ENCRYPTION, rng.randrange(15, 60), tag="-previous")
    if len(users) > 2:
        add(users[-1], Purpose.SMIME_SIGNING, 200, typo=True)
        add(users[-2], Purpose.SMIME_SIGNING, -3)
    return out


def seed_demo_certificates(key: EncryptionKey) -> ImportBatch | None:
    """Start the demo's bulk import with ``key``; None if it was started before."""
    if ImportBatch.objects.filter(created_by_name=ACTOR).exists():
        return None
    files = entries()
    if not files:
        return None
    return imports.batch_create(
        Actor.system(ACTOR),
        kind=ImportBatch.Kind.BULK,
        key=key,
        entries=files,
        tags=[ScopeTag.default()],
    )
