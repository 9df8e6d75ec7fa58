"""The demo's simulated devices: which directory devices they are, their keys and credentials.

The devices themselves are :mod:`delivery.simulator` clients that talk to the portal over HTTP
only; this module picks them from the directory (a real device knows its own Intune id), keeps
the tenant enrolment secret the demo fleet uses, and keeps each device's key and credential in
the data folder so a restarted fleet carries on where it stopped.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.db.models import Exists, OuterRef

from certs.models import Certificate
from delivery import credentials
from delivery.simulator import Api, DeviceSpec, SimulatedDevice
from devtools.certificates import distinct_keys
from directory.models import Device, Platform
from portal.audit import Actor
from portal.lib.env import development_secret

ACTOR = "Device simulator"


def enrolment_secret() -> str:
    """The demo fleet's tenant enrolment secret, made and registered on first use."""
    path = Path(settings.DATA_DIR) / "device-enrolment-secret"
    secret = development_secret(path, lambda: credentials.SECRET_PREFIX + secrets.token_urlsafe(32))
    credentials.secret_create(Actor.system(ACTOR), value=secret)
    return secret


def pick(count: int) -> list[DeviceSpec]:
    """``count`` current devices with a primary user, taking the six platforms in turn (devices whose
    user has a certificate first, so the demo has something to deliver)."""
    by_platform: dict[str, list[Device]] = {p: [] for p in Platform.values}
    holds = Exists(Certificate.objects.filter(user_id=OuterRef("primary_user_id")))
    current = Device.objects.filter(removed_at=None, primary_user__isnull=False)
    for device in current.annotate(holds=holds).order_by("-holds", "name", "pk"):
        by_platform.setdefault(device.platform, []).append(device)
    chosen: list[Device] = []
    queues = [iter(devices) for devices in by_platform.values()]
    while len(chosen) < count and queues:
        for queue in list(queues):
            found = next(queue, None)
            if found is None:
                queues.remove(queue)
            elif len(chosen) < count:
                chosen.append(found)
    return [DeviceSpec(str(d.device_id), d.platform, d.name) for d in chosen]


class FleetState:
    """Each device's private key, credential and report sequence, in one private file per device."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.keys: Iterator[rsa.RSAPrivateKey] = distinct_keys()

    def device(self, api: Api, spec: DeviceSpec, failure_rate: float) -> SimulatedDevice:
        saved = self._read(spec)
        if saved is not None:
            key = serialization.load_pem_private_key(saved["key"].encode(), password=None)
            assert isinstance(key, rsa.RSAPrivateKey)
            device = SimulatedDevice(api, spec, key=key, failure_rate=failure_rate)
            device.credential = str(saved["credential"])
            device.sequence = int(saved.get("sequence", 0))
            return device
        return SimulatedDevice(api, spec, key=next(self.keys), failure_rate=failure_rate)

    def save(self, device: SimulatedDevice) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        pem = device.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        path = self.folder / f"{device.spec.device_id}.json"
        draft = path.with_suffix(".tmp")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump({"key": pem, "credential": device.credential, "sequence": device.sequence}, out)
        draft.replace(path)

    def _read(self, spec: DeviceSpec) -> dict[str, str] | None:
        if self.folder is None:
            return None
        path = self.folder / f"{spec.device_id}.json"
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return None
