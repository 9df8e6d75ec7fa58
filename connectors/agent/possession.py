"""Proof that a connector holds the private key of the public key it publishes.

The agent signs a statement naming its connector, the key's KSP name and the public key with
that private key (RSA-PSS, SHA-256), as a certificate request does; the portal checks the
signature with the published key before it encrypts any password to it. A key the connector
does not hold (a copied public key, a typo in a key name) is refused at publication instead
of leaving passwords nobody can decrypt. Shared by the agent and the portal: no Django here.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CONTEXT = b"PFX Portal connector key possession v1"
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def statement(connector: str, provider_name: str, key_name: str, public_key: rsa.RSAPublicKey) -> bytes:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    parts = [CONTEXT, connector.encode(), provider_name.encode(), key_name.encode(), der.hex().encode()]
    return b"\n".join(parts)


def prove(key: rsa.RSAPrivateKey, connector: str, provider_name: str, key_name: str) -> str:
    signed = key.sign(statement(connector, provider_name, key_name, key.public_key()), _PSS, hashes.SHA256())
    return base64.b64encode(signed).decode("ascii")


def holds(public_key_pem: str, proof: str, connector: str, provider_name: str, key_name: str) -> bool:
    try:
        public_key = serialization.load_pem_public_key(public_key_pem.encode("ascii"))
        if not isinstance(public_key, rsa.RSAPublicKey):
            return False
        signature = base64.b64decode(proof, validate=True)
        public_key.verify(
            signature, statement(connector, provider_name, key_name, public_key), _PSS, hashes.SHA256()
        )
    except (InvalidSignature, binascii.Error, ValueError, UnicodeError):
        return False
    return True
