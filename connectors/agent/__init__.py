"""The certificate connector agent: a separate program that holds the private key.

It needs only the standard library and ``cryptography``; it never imports Django
and never touches the portal's database. It talks to the portal's
``/connector-api/`` over HTTP(S) with its own credential.
"""

from __future__ import annotations

VERSION = "1.2.0"
DEFAULT_PROVIDER = "Microsoft Software Key Storage Provider"
DEFAULT_KEY_NAME = "PFXEncryptionKey"
PASSPHRASE_ENV = "CONNECTOR_KEY_PASSPHRASE"
EXPORT_PASSPHRASE_ENV = "CONNECTOR_EXPORT_PASSPHRASE"
FEATURES = ("pkcs_import", "rewrap", "device_reencrypt")
