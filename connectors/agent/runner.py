"""The agent's life: enrol once, hold the key, publish it, check in, and do re-wrap work."""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.agent import FEATURES, VERSION, keystore, possession
from connectors.agent.client import ApiError, PortalClient

log = logging.getLogger("connector")

CREDENTIAL_FILE = "credential.json"
MAX_SKEW_SECONDS = 300
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0
# Polling for jobs: soon again after work was found (devices are checking in, more is coming),
# twice as long after each empty answer, up to this long.
FIRST_IDLE_SECONDS = 0.2
MAX_IDLE_SECONDS = 5.0


class AgentStopped(Exception):
    """The portal refused the agent's credential; running on is pointless."""


@dataclass
class Config:
    server: str
    state_dir: Path
    passphrase: str
    provider: str
    key_name: str
    key_size: int = 2048
    name: str = ""
    host_name: str = field(default_factory=socket.gethostname)
    interval: float | None = None


def _now() -> datetime:
    return datetime.now(UTC)


class Agent:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = keystore.KeyStore(config.state_dir, config.passphrase)
        self.client = PortalClient(config.server, self._load_credential())
        self.key: rsa.RSAPrivateKey | None = None
        self.heartbeat_interval = config.interval or 60.0
        self.server_skew: float | None = None
        self.pending = 0

    # --- enrolment -------------------------------------------------------------------
    def _credential_path(self) -> Path:
        return self.config.state_dir / CREDENTIAL_FILE

    def _load_credential(self) -> str:
        try:
            return str(json.loads(self._credential_path().read_text())["credential"])
        except (FileNotFoundError, KeyError, ValueError):
            return ""

    @property
    def enrolled(self) -> bool:
        return bool(self.client.credential)

    def enroll(self, token: str) -> None:
        if self.enrolled:
            log.info("already enrolled; the token is not used again")
            return
        body = {
            "token": token,
            "name": self.config.name,
            "host_name": self.config.host_name,
            "version": VERSION,
            "features": list(FEATURES),
        }
        answer = retrying("enrolling", lambda: self.client.post("enroll", body))
        self.config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._credential_path(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(
                {
                    "connector": answer["connector"],
                    "credential": answer["credential"],
                    "server": self.config.server,
                },
                handle,
            )
        self.client.credential = str(answer["credential"])
        self.heartbeat_interval = self.config.interval or float(answer.get("heartbeat_interval", 60))
        log.info("enrolled as connector %s", answer["connector"])

    # --- key ---------------------------------------------------------------------------
    def open_key(self) -> rsa.RSAPrivateKey:
        self.key = self.store.load_or_create(self.config.provider, self.config.key_name, self.config.key_size)
        return self.key

    def publish_key(self) -> dict[str, Any]:
        key = self.key or self.open_key()
        connector = json.loads(self._credential_path().read_text())["connector"]
        return self.client.post(
            "keys",
            {
                "provider_name": self.config.provider,
                "key_name": self.config.key_name,
                "public_key_pem": keystore.public_pem(key),
                "proof": possession.prove(key, connector, self.config.provider, self.config.key_name),
            },
        )

    # --- health --------------------------------------------------------------------------
    def self_tests(self) -> list[dict[str, Any]]:
        tests: list[dict[str, Any]] = []
        try:
            key = self.store.load(self.config.provider, self.config.key_name)
            tests.append({"name": "key_loadable", "ok": True, "detail": f"RSA-{key.key_size}"})
        except keystore.KeyStoreError as exc:
            tests.append({"name": "key_loadable", "ok": False, "detail": str(exc)})
            key = None
        if key is not None:
            probe = secrets.token_bytes(32)
            try:
                ok = (
                    keystore.decrypt(
                        key, keystore.encrypt(key.public_key(), probe, "oaepSha512"), "oaepSha512"
                    )
                    == probe
                )
                tests.append({"name": "round_trip", "ok": ok, "detail": "OAEP SHA-512 encrypt/decrypt"})
            except Exception as exc:
                tests.append({"name": "round_trip", "ok": False, "detail": str(exc)[:200]})
        else:
            tests.append({"name": "round_trip", "ok": False, "detail": "no key"})
        skew = self.server_skew
        tests.append(
            {
                "name": "clock_skew",
                "ok": skew is None or abs(skew) <= MAX_SKEW_SECONDS,
                "detail": "not measured yet" if skew is None else f"{skew:+.1f} s",
            }
        )
        tests.append({"name": "pending_work", "ok": True, "detail": str(self.pending)})
        return tests

    def heartbeat(self) -> dict[str, Any]:
        sent = _now()
        answer = self.client.post(
            "heartbeat",
            {
                "version": VERSION,
                "host_name": self.config.host_name,
                "features": list(FEATURES),
                "self_tests": self.self_tests(),
                "pending_work": self.pending,
                "sent_at": sent.isoformat(),
            },
        )
        received = _now()
        if "server_time" in answer:
            server = datetime.fromisoformat(str(answer["server_time"]))
            midpoint = sent + (received - sent) / 2
            self.server_skew = (midpoint - server).total_seconds()
        if not self.config.interval and answer.get("heartbeat_interval"):
            self.heartbeat_interval = float(answer["heartbeat_interval"])
        self.pending = int(answer.get("pending_work", 0))
        return answer

    # --- work ---------------------------------------------------------------------------
    def work_once(self, limit: int = 50) -> int:
        jobs = self.client.post("jobs/claim", {"limit": limit}).get("jobs", [])
        if not jobs:
            return 0
        results = [self._do(job) for job in jobs]
        self.client.post("jobs/results", {"results": results})
        return len(results)

    def _do(self, job: dict[str, Any]) -> dict[str, Any]:
        job_id = str(job.get("id"))
        if job.get("skip"):
            return {"job": job_id, "ok": False, "error": str(job["skip"])}
        stage = "key_not_held"
        try:
            source, to = job["from"], job["to"]
            key = self._key_for(str(source["provider_name"]), str(source["key_name"]))
            stage = "decrypt_failed"
            # The plaintext lives only in this frame and is dropped at once.
            plaintext = keystore.decrypt(key, base64.b64decode(job["encrypted_password"]), source["padding"])
            stage = "bad_device_key" if job.get("kind") == "device" else "reencrypt_failed"
            target = keystore.load_public(to["public_key_pem"])
            ciphertext = keystore.encrypt(target, plaintext, to["padding"])
            del plaintext
            return {
                "job": job_id,
                "ok": True,
                "encrypted_password": base64.b64encode(ciphertext).decode("ascii"),
            }
        except Exception as exc:
            return {"job": job_id, "ok": False, "code": stage, "error": f"{type(exc).__name__}: {exc}"[:400]}

    def _key_for(self, provider: str, key_name: str) -> rsa.RSAPrivateKey:
        if (provider, key_name) == (self.config.provider, self.config.key_name):
            return self.key or self.open_key()
        return self.store.load(provider, key_name)

    # --- loop -----------------------------------------------------------------------------
    def run(self, *, once: bool = False) -> None:
        if not self.enrolled:
            raise AgentStopped("not enrolled: run once with --enroll TOKEN")
        self.open_key()
        # The portal may still be starting (or down for an upgrade) when the service starts.
        self._call(lambda: retrying("publishing the key", self.publish_key))
        next_beat = 0.0
        backoff = FIRST_BACKOFF_SECONDS
        idle = FIRST_IDLE_SECONDS
        while True:
            try:
                if time.monotonic() >= next_beat:
                    self.heartbeat()
                    next_beat = time.monotonic() + self.heartbeat_interval
                done = self.work_once()
                backoff = FIRST_BACKOFF_SECONDS
            except ApiError as exc:
                if exc.refused:
                    raise AgentStopped(f"the portal refused this connector: {exc}") from exc
                log.warning("portal error: %s", exc)
                done = 0
            except OSError as exc:
                log.warning("portal unreachable: %s (retrying in %.0f s)", exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            if once:
                return
            if done:
                idle = FIRST_IDLE_SECONDS
            else:
                time.sleep(max(FIRST_IDLE_SECONDS, min(idle, next_beat - time.monotonic())))
                idle = min(idle * 2, self.heartbeat_interval, MAX_IDLE_SECONDS)

    def _call[T](self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except ApiError as exc:
            if exc.refused:
                raise AgentStopped(f"the portal refused this connector: {exc}") from exc
            raise


def retrying[T](what: str, call: Callable[[], T]) -> T:
    """``call()``, again and again with a growing pause while the portal is unreachable or answers
    with a passing error (5xx, 429); any other answer is final and raised."""
    backoff = FIRST_BACKOFF_SECONDS
    while True:
        try:
            return call()
        except ApiError as exc:
            if not exc.transient:
                raise
            log.warning("portal error while %s: %s (retrying in %.0f s)", what, exc, backoff)
        except OSError as exc:
            log.warning("portal unreachable while %s: %s (retrying in %.0f s)", what, exc, backoff)
        time.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
