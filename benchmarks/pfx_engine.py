"""PFX engine throughput: inspect + encrypt + Graph body, fast path vs the plain library path.

    .venv/bin/python benchmarks/pfx_engine.py [--files 8] [--seconds 3] [--repeat 3]

Generates OpenSSL-default PFX files (openssl pkcs12 -export: PBES2 AES-256-CBC, PBKDF2 and
MAC SHA-256, 2048 iterations) for RSA-2048 and RSA-4096 keys, then runs the whole upload
preparation on one core with each engine in the same process, checks they give identical
results, and prints files per CPU-second (CPU time of this process, so other load on a shared
machine counts less than in wall time) and the ratio. ``--repeat`` measures each engine that
many times and prints the median and minimum. The "crypto floor" line is the key derivations
and OAEP alone (MAC key, two PBKDF2 keys), what no implementation avoids.
Targets: RSA-2048 >= 800 files/s and >= 20x the library path; RSA-4096 >= 300 files/s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django

django.setup()

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from certs.pfx import build_graph_body, encrypt_password, inspect_pfx, load_public_key, rsa_public_blob  # noqa: E402
from certs.pfx.kdf import MAC_ID, bmp_password, pkcs12_kdf  # noqa: E402
from certs.pfx.structure import read_structure  # noqa: E402

PASSWORD = "Bench-Password-1"
UPN = "user@contoso.example"


def make_files(bits: int, count: int, tmp: Path) -> list[bytes]:
    files = []
    for index in range(count):
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        now = datetime.now(UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"User {index}")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(UPN)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        (tmp / "key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        subprocess.run(
            ["openssl", "pkcs12", "-export", "-inkey", str(tmp / "key.pem"), "-in", str(tmp / "cert.pem"),
             "-out", str(tmp / "out.p12"), "-passout", "stdin"],
            input=PASSWORD.encode() + b"\n", check=True, capture_output=True,
        )  # fmt: skip
        files.append((tmp / "out.p12").read_bytes())
    return files


def prepare(data: bytes, public_key: rsa.RSAPublicKey, engine: str) -> str:
    inspection = inspect_pfx(data, PASSWORD, upn=UPN, public_key=public_key, engine=engine)  # type: ignore[arg-type]
    body = build_graph_body(
        inspection,
        data,
        encrypted_password=encrypt_password(PASSWORD, public_key),
        upn=UPN,
        provider_name="Microsoft Software Key Storage Provider",
        key_name="PFXEncryptionKey",
    )
    return json.dumps(body)


def rate(files: list[bytes], public_key: rsa.RSAPublicKey, engine: str, seconds: float) -> float:
    """Files per CPU-second of this process."""
    done, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        for data in files:
            prepare(data, public_key, engine)
        done += len(files)
    return done / (time.process_time() - start)


def crypto_floor(files: list[bytes], public_key: rsa.RSAPublicKey, seconds: float) -> float:
    """Files per CPU-second for the MAC key, the two PBKDF2 keys and the OAEP encryption alone."""
    work = []
    for data in files:
        structure = read_structure(data)
        assert structure.mac is not None
        protections = [c.protection for c in structure.containers if c.protection] + [
            p for p in structure.key_protections if p
        ]
        work.append((structure.mac, protections))
    password = PASSWORD.encode()
    done, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        for mac, protections in work:
            size = hashlib.new(mac.hash_name).digest_size
            pkcs12_kdf(mac.hash_name, bmp_password(PASSWORD), mac.salt, MAC_ID, mac.iterations, size)
            for p in protections:
                algorithm = getattr(hashes, p.hash_name.upper())()
                PBKDF2HMAC(algorithm, p.key_length, p.salt, p.iterations).derive(password)
            encrypt_password(PASSWORD, public_key)
        done += len(work)
    return done / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8, help="distinct files per key size")
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU time per measurement")
    parser.add_argument("--repeat", type=int, default=1, help="measurements per engine (median and min)")
    args = parser.parse_args()

    connector = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_key = load_public_key(rsa_public_blob(connector.public_key()))
    targets = {2048: (800, 20), 4096: (300, None)}
    with tempfile.TemporaryDirectory() as tmp:
        for bits in (2048, 4096):
            files = make_files(bits, args.files, Path(tmp))
            for data in files:
                fast = inspect_pfx(data, PASSWORD, upn=UPN).to_json()
                library = inspect_pfx(data, PASSWORD, upn=UPN, engine="library").to_json()
                assert fast == library, "engines disagree"
                assert fast["ok"], fast["problems"]
            fast_rates, library_rates, floors = [], [], []
            for _ in range(args.repeat):
                fast_rates.append(rate(files, public_key, "fast", args.seconds))
                library_rates.append(rate(files, public_key, "library", args.seconds))
                floors.append(crypto_floor(files, public_key, args.seconds))
            fast_rate, library_rate = statistics.median(fast_rates), statistics.median(library_rates)
            ratio = fast_rate / library_rate
            floor, min_ratio = targets[bits]
            met = fast_rate >= floor and (min_ratio is None or ratio >= min_ratio)
            print(
                f"RSA-{bits}: fast {fast_rate:8.1f} files/s ({1000 / fast_rate:6.2f} ms/file, min {min(fast_rates):.1f}/s) | "
                f"library baseline {library_rate:6.1f} files/s ({1000 / library_rate:6.2f} ms/file) | "
                f"ratio {ratio:5.1f}x | target >= {floor}/s"
                + (f" and >= {min_ratio}x" if min_ratio else "")
                + (" MET" if met else " NOT MET")
            )
            print(
                f"RSA-{bits}: crypto floor {statistics.median(floors):8.1f} files/s; "
                f"the fast path runs at {fast_rate / statistics.median(floors):.0%} of it"
            )
    print(
        f"identical results on all {2 * args.files} files; files per CPU-second, one core, "
        f"median of {args.repeat}; {sys.version.split()[0]}"
    )


if __name__ == "__main__":
    main()
