"""A local key store named like a Windows KSP key: ``<state>/keys/<provider>/<key name>.p8``.

Each file is PKCS#8, encrypted with a passphrase taken from the environment. The
private key is only ever held in this process's memory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

PADDINGS: dict[str, type[hashes.HashAlgorithm]] = {
    "oaepSha256": hashes.SHA256,
    "oaepSha384": hashes.SHA384,
    "oaepSha512": hashes.SHA512,
}


class KeyStoreError(Exception):
    pass


def _oaep(name: str) -> padding.OAEP:
    algorithm = PADDINGS.get(name)
    if algorithm is None:
        raise KeyStoreError(f"unsupported padding {name!r}")
    return padding.OAEP(mgf=padding.MGF1(algorithm=algorithm()), algorithm=algorithm(), label=None)


def _safe(part: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9 ._-]", "_", part).strip(" .")
    if not cleaned:
        raise KeyStoreError("provider and key names must contain letters or digits")
    return cleaned


class KeyStore:
    def __init__(self, state_dir: Path, passphrase: str) -> None:
        if not passphrase:
            raise KeyStoreError("a key store passphrase is required (environment variable)")
        self.root = state_dir / "keys"
        self.passphrase = passphrase.encode("utf-8")

    def path(self, provider: str, key_name: str) -> Path:
        return self.root / _safe(provider) / f"{_safe(key_name)}.p8"

    def exists(self, provider: str, key_name: str) -> bool:
        return self.path(provider, key_name).exists()

    def load(self, provider: str, key_name: str) -> rsa.RSAPrivateKey:
        try:
            data = self.path(provider, key_name).read_bytes()
        except FileNotFoundError as exc:
            raise KeyStoreError(f"key {provider} / {key_name} does not exist") from exc
        return load_encrypted(data, self.passphrase)

    def create(self, provider: str, key_name: str, size: int = 2048) -> rsa.RSAPrivateKey:
        if self.exists(provider, key_name):
            raise KeyStoreError("Key creation failed, it likely already exists")
        key = rsa.generate_private_key(public_exponent=65537, key_size=size)
        self._write(provider, key_name, key)
        return key

    def load_or_create(self, provider: str, key_name: str, size: int = 2048) -> rsa.RSAPrivateKey:
        if self.exists(provider, key_name):
            return self.load(provider, key_name)
        return self.create(provider, key_name, size)

    def export(self, provider: str, key_name: str, target: Path, passphrase: str) -> None:
        """Like Export-IntunePrivateKey, but the file is encrypted PKCS#8, never plaintext."""
        if target.exists():
            raise KeyStoreError(f"{target} already exists")
        key = self.load(provider, key_name)
        _write_private(target, encrypted(key, passphrase.encode("utf-8")))

    def import_(self, provider: str, key_name: str, source: Path, passphrase: str) -> rsa.RSAPrivateKey:
        """Like Import-IntunePrivateKey: the same key on another connector."""
        key = load_encrypted(source.read_bytes(), passphrase.encode("utf-8"))
        if self.exists(provider, key_name):
            raise KeyStoreError("Key creation failed, it likely already exists")
        self._write(provider, key_name, key)
        return key

    def _write(self, provider: str, key_name: str, key: rsa.RSAPrivateKey) -> None:
        target = self.path(provider, key_name)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_private(target, encrypted(key, self.passphrase))


def encrypted(key: rsa.RSAPrivateKey, passphrase: bytes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )


def load_encrypted(data: bytes, passphrase: bytes) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError) as exc:
        raise KeyStoreError("the key file does not open with this passphrase") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyStoreError("the key is not an RSA key")
    return key


def _write_private(target: Path, data: bytes) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def decrypt(key: rsa.RSAPrivateKey, ciphertext: bytes, padding_name: str) -> bytes:
    return key.decrypt(ciphertext, _oaep(padding_name))


def encrypt(public_key: rsa.RSAPublicKey, plaintext: bytes, padding_name: str) -> bytes:
    return public_key.encrypt(plaintext, _oaep(padding_name))


def load_public(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyStoreError("the target key is not an RSA key")
    return key
