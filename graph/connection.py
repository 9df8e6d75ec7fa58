"""The tenant's Microsoft Graph connection: saving and testing it, and the signed-in client every
Graph step uses.

Uploads and deletions live in :mod:`graph.uploads`, reconcile in :mod:`graph.reconcile` and the
directory sync in :mod:`graph.directory_sync`.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from graph.budget import WriteBudget
from graph.client import CLOUDS, GraphClient, GraphError, TokenSource
from graph.models import TenantConnection, default_write_limit, default_write_window
from graph.secrets import seal, unseal
from portal import audit
from portal.lib.refusal import Refused
from portal.models import AuditEvent

CONNECTION_CATEGORY = "Microsoft Intune"
NOT_CONNECTED = "not_connected"
Op = AuditEvent.Operation


def failure(exc: GraphError | Refused) -> dict[str, Any]:
    """What a run keeps of the Graph step that failed it: Graph's error, and a one-line summary."""
    if isinstance(exc, GraphError):
        return exc.to_json() | {"summary": exc.summary()}
    return {"summary": str(exc)}


@dataclass(frozen=True)
class ConnectionInput:
    tenant_id: str
    client_id: str
    cloud: str
    credential_kind: str
    secret: str = ""
    certificate_pem: str = ""
    authority_url: str = ""
    graph_url: str = ""
    ca_certificate: str = ""
    write_limit: int = field(default_factory=default_write_limit)
    write_window_seconds: float = field(default_factory=default_write_window)


def certificate_credential(pem: str) -> dict[str, str]:
    """msal's certificate credential from a PEM holding the private key and its certificate."""
    data = pem.encode()
    key = serialization.load_pem_private_key(data, password=None)
    cert = x509.load_pem_x509_certificate(data)
    if cert.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
        raise ValueError("The private key does not belong to the certificate.")
    der = cert.public_bytes(serialization.Encoding.DER)
    return {
        "private_key": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "thumbprint": hashlib.sha1(der, usedforsecurity=False).hexdigest(),
        "public_certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
    }


def save_connection(actor: audit.Actor, data: ConnectionInput) -> TenantConnection:
    """Create or change the connection. A blank credential keeps the stored one (it is never shown again)."""
    with transaction.atomic():
        connection = (
            TenantConnection.objects.select_for_update().filter(pk=TenantConnection.SINGLETON).first()
        )
        fields = [
            "tenant_id",
            "client_id",
            "cloud",
            "credential_kind",
            "authority_url",
            "graph_url",
            "ca_certificate",
            "write_limit",
            "write_window_seconds",
        ]
        before = audit.snapshot(connection, fields) if connection else {}
        connection = connection or TenantConnection(pk=TenantConnection.SINGLETON)
        for name in fields:
            value = getattr(data, name)
            setattr(connection, name, value.strip() if isinstance(value, str) else value)
        changes = audit.changes(before, audit.snapshot(connection, fields))
        credential: dict[str, str] | None = None
        if data.credential_kind == TenantConnection.Credential.SECRET and data.secret:
            credential = {"secret": data.secret}
        elif data.credential_kind == TenantConnection.Credential.CERTIFICATE and data.certificate_pem:
            try:
                credential = certificate_credential(data.certificate_pem)
            except ValueError as exc:
                raise Refused(
                    "bad_certificate", f"Cannot use this PEM: {exc}", field="certificate_pem"
                ) from exc
        if credential is None and not connection.credential_encrypted:
            raise Refused("credential_required", "A client secret or a certificate is required.")
        if credential is None and before.get("credential_kind") not in (None, data.credential_kind):
            raise Refused("credential_kind_changed", "Give the new credential when changing its kind.")
        if credential is not None:
            connection.credential_encrypted = seal(credential)
            connection.certificate_thumbprint = credential.get("thumbprint", "")
            connection.credential_set_at = timezone.now()
            changes.append({"field": "credential", "old": "(hidden)", "new": "(replaced)"})
        connection.updated_by_name = actor.name
        connection.test_ok = None
        connection.save()
        audit.record(
            actor,
            activity="Update Microsoft Graph connection" if before else "Connect Microsoft Graph",
            category=CONNECTION_CATEGORY,
            operation=Op.UPDATE if before else Op.CREATE,
            resources=[
                audit.resource(
                    type="Tenant connection", id=connection.tenant_id, name=str(connection), changes=changes
                )
            ],
        )
    forget_clients()
    return connection


_clients_lock = threading.Lock()
_sources: dict[tuple[Any, ...], TokenSource] = {}


def forget_clients() -> None:
    with _clients_lock:
        _sources.clear()


def _session(connection: TenantConnection) -> requests.Session:
    session = requests.Session()
    if connection.ca_certificate:
        pem = connection.ca_certificate.strip().encode() + b"\n"
        path = Path(settings.DATA_DIR) / f"graph-ca-{hashlib.sha256(pem).hexdigest()[:16]}.pem"
        if not path.exists():
            path.write_bytes(pem)
        session.verify = str(path)
        session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override verify=
    return session


def token_source(connection: TenantConnection) -> TokenSource:
    """One msal client per connection version and process: its token cache serves every task the process runs."""
    key = (connection.pk, connection.updated_at, connection.credential_set_at)
    with _clients_lock:
        source = _sources.get(key)
        if source is None:
            _sources.clear()
            source = TokenSource(
                tenant_id=connection.tenant_id,
                client_id=connection.client_id,
                credential=_credential(connection),
                cloud=CLOUDS[connection.cloud],
                authority_host=connection.authority_url or None,
                session=_session(connection),
            )
            _sources[key] = source
        return source


def _credential(connection: TenantConnection) -> str | dict[str, str]:
    stored = unseal(connection.credential_encrypted)
    if connection.credential_kind == TenantConnection.Credential.SECRET:
        return str(stored["secret"])
    return {"private_key": stored["private_key"], "thumbprint": stored["thumbprint"]}


def client_for(connection: TenantConnection, *, budget: WriteBudget | None = None) -> GraphClient:
    source = token_source(connection)
    return GraphClient(
        graph_url=connection.graph_url or CLOUDS[connection.cloud].graph_url,
        tokens=source.token,
        forget_token=source.forget,
        session=source.session,
        write_slot=budget.slot if budget else None,
        on_throttle=budget.pause if budget else None,
        max_attempts=settings.GRAPH_MAX_ATTEMPTS,
        backoff_cap=float(settings.GRAPH_BACKOFF_CAP_SECONDS),
    )


def connected_client() -> GraphClient:
    connection = TenantConnection.current()
    if connection is None:
        raise Refused(
            NOT_CONNECTED,
            "Connect the portal to Microsoft Graph first (Tenant administration > Microsoft Intune).",
        )
    return client_for(
        connection,
        budget=WriteBudget.shared(limit=connection.write_limit, window=connection.write_window_seconds),
    )


def test_connection(actor: audit.Actor) -> TenantConnection:
    """Sign in and read one page of users and of imported certificates; keep the outcome on the connection."""
    connection = TenantConnection.current()
    if connection is None:
        raise Refused(NOT_CONNECTED, "No connection to test.")
    result: dict[str, Any]
    try:
        client = client_for(connection)
        users = client.get_json("/v1.0/users?$top=1&$select=id,userPrincipalName")
        certificates = client.get_json("/beta/deviceManagement/userPfxCertificates?$top=1")
        result = {
            "users": len(users.get("value", [])),
            "certificates": len(certificates.get("value", [])),
            "more": bool(certificates.get("@odata.nextLink")),
        }
        ok = True
    except GraphError as exc:
        result, ok = {"error": exc.to_json(), "summary": exc.summary()}, False
    except (ValueError, KeyError) as exc:
        result, ok = {"summary": f"The stored credential cannot be used: {exc}"}, False
    with transaction.atomic():
        TenantConnection.objects.filter(pk=connection.pk).update(
            tested_at=timezone.now(), test_ok=ok, test_result=result
        )
        audit.record(
            actor,
            activity="Test Microsoft Graph connection",
            category=CONNECTION_CATEGORY,
            operation=Op.ACTION,
            result=AuditEvent.Result.SUCCESS if ok else AuditEvent.Result.FAILURE,
            resources=[
                audit.resource(type="Tenant connection", id=connection.tenant_id, name=str(connection))
            ],
        )
    connection.refresh_from_db()
    return connection
