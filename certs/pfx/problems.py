"""Stable problem codes reported by the PFX engine.

The codes, severities and messages are part of the product's contract: the import
pipeline stores them and docs/pfx-problem-codes.md documents them. Never put a
password or key material into a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]

ERROR: Severity = "error"
WARNING: Severity = "warning"

# code -> (severity, message telling the admin what to do)
CATALOGUE: dict[str, tuple[Severity, str]] = {
    "empty_file": (ERROR, "The file is empty. Export the certificate again as a .pfx/.p12 file."),
    "file_too_large": (
        ERROR,
        "The file is larger than a PFX file can reasonably be. Check that you picked the right file.",
    ),
    "not_pkcs12": (
        ERROR,
        "The file is not a PFX/PKCS#12 file. Export the certificate with its private key as .pfx or .p12.",
    ),
    "corrupt": (
        ERROR,
        "The file is damaged (truncated or altered). Copy or export it again from the original.",
    ),
    "wrong_password": (ERROR, "The password does not open this file. Check the password and try again."),
    "unsupported_algorithm": (
        ERROR,
        "The file uses an encryption or integrity scheme the portal does not support. "
        "Export it again with AES-256 and a SHA-256 MAC (the OpenSSL 3 and Windows defaults).",
    ),
    "no_private_key": (
        ERROR,
        "The file holds no private key. Export the certificate again and include the private key.",
    ),
    "no_certificate": (
        ERROR,
        "The file holds no certificate. Export the certificate together with its private key.",
    ),
    "multiple_keys": (
        ERROR,
        "The file holds more than one private key. Export one user's certificate and key per file.",
    ),
    "key_certificate_mismatch": (
        ERROR,
        "The private key does not belong to any certificate in the file. Export the matching pair again.",
    ),
    "expired": (ERROR, "The certificate has expired. Issue a new certificate for this user."),
    "not_yet_valid": (
        ERROR,
        "The certificate is not valid yet. Wait until its start date or check the issuing CA's clock.",
    ),
    "kdf_iterations_too_high": (
        ERROR,
        "The file asks for more key-derivation iterations than the portal allows. "
        "Export it again with the exporting tool's default settings.",
    ),
    "password_not_ascii": (
        ERROR,
        "The password contains characters other than plain ASCII, which Intune cannot use reliably. "
        "Export the PFX again with an ASCII-only password.",
    ),
    "password_too_long": (
        ERROR,
        "The password is too long to be encrypted for Intune with this connector key and padding. "
        "Export the PFX again with a shorter password.",
    ),
    "ca_certificate": (
        ERROR,
        "The certificate is a CA certificate (basic constraints CA:TRUE), not a user's certificate, and its "
        "private key must never be sent to devices. Export the user's own certificate and private key instead.",
    ),
    "key_usage_mismatch": (
        ERROR,
        "The certificate's key usage does not allow the chosen purpose, so mail clients will not use it for "
        "that. Choose the purpose the certificate was issued for: signing needs digitalSignature or "
        "nonRepudiation, encryption needs keyEncipherment (keyAgreement for EC keys).",
    ),
    "key_held_by_other_user": (
        ERROR,
        "Another user's certificate already uses this private key, and a key pair must belong to one person. "
        "Check that the file belongs to this user; if the other certificate was imported for the wrong user, "
        "delete it first.",
    ),
    "expires_soon": (WARNING, "The certificate expires soon. Plan a new certificate for this user."),
    "upn_mismatch": (
        WARNING,
        "The certificate names no e-mail address or UPN equal to the user's UPN. Check it is the right user.",
    ),
    "missing_email_protection_eku": (
        WARNING,
        "The certificate's extended key usage does not include e-mail protection, so mail clients may "
        "refuse it for S/MIME. Check the certificate template.",
    ),
    "weak_encryption": (
        WARNING,
        "Part of the file is protected with weak legacy encryption (such as RC2-40) or not at all. "
        "It will be accepted, but prefer exporting with AES-256.",
    ),
    "not_der": (
        WARNING,
        "The file is not in strict DER encoding. It was accepted, but some tools may reject it.",
    ),
    # Usage errors of the API and the command (not properties of a file).
    "bad_public_key": (
        ERROR,
        "The connector key file is neither a PEM public key nor a Windows RSAPUBLICBLOB. "
        "Export it again with Export-IntunePublicKey.",
    ),
    "private_key_given": (
        ERROR,
        "This is a private key. Give the portal only the connector's public key and keep the private key "
        "on the connector.",
    ),
    "bad_padding": (
        ERROR,
        "The padding scheme is not supported. Use oaepSha512 (default), oaepSha384 or oaepSha256; "
        "pkcs1 and oaepSha1 are refused.",
    ),
    "bad_purpose": (
        ERROR,
        "The intended purpose is not one Intune accepts. Use unassigned, smimeEncryption, smimeSigning, "
        "vpn or wifi.",
    ),
}


@dataclass(frozen=True)
class Problem:
    code: str
    severity: Severity
    message: str

    @classmethod
    def of(cls, code: str, detail: str | None = None) -> Problem:
        severity, message = CATALOGUE[code]
        if detail:
            message = f"{message} ({detail})"
        return cls(code, severity, message)

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity, "message": self.message}


class ProblemError(Exception):
    """Bad input, reported with a stable code. The message never contains secrets."""

    def __init__(self, code: str, message: str | None = None) -> None:
        self.problem = Problem.of(code) if message is None else Problem(code, CATALOGUE[code][0], message)
        super().__init__(self.problem.message)

    @property
    def code(self) -> str:
        return self.problem.code

    @classmethod
    def of(cls, code: str, detail: str | None = None) -> ProblemError:
        return cls(code, Problem.of(code, detail).message)
