"""Simulated managed devices: real HTTP clients of the device API with keys of their own.

No Django here (only the standard library, ``cryptography`` and :mod:`delivery.protocol`, which
opens PFX files with the portal's own PKCS#12 reader), so a fleet can run in processes that share
nothing with the portal but its URL. Each device enrols
with its key pair, checks in, decrypts every password sent to it with its private key, opens
the PFX with it, checks the certificate's thumbprint and reports what happened; it removes what
it is told to remove. ``failure_rate`` makes a share of installs fail with ``install_failed``.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from delivery import protocol

AGENT_VERSION = "1.0.0"


class DeviceApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class DeviceSpec:
    """What a device knows about itself: its Intune device id, platform and name."""

    device_id: str
    platform: str
    name: str


@dataclass
class Stats:
    check_ins: int = 0
    installed: int = 0
    failed: int = 0
    removed: int = 0
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Api:
    """The device API over HTTP/1.1, one kept-alive connection per thread."""

    def __init__(self, server: str, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(server.rstrip("/"))
        self.secure = parsed.scheme == "https"
        self.netloc = parsed.netloc
        self.prefix = parsed.path + "/device-api/"
        self.timeout = timeout
        self.local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self.local, "conn", None)
        if conn is None:
            kind = http.client.HTTPSConnection if self.secure else http.client.HTTPConnection
            conn = self.local.conn = kind(self.netloc, timeout=self.timeout)
        return conn

    def post(self, path: str, body: dict[str, Any], credential: str = "") -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if credential:
            headers["Authorization"] = f"Bearer {credential}"
        data = json.dumps(body).encode()
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request("POST", self.prefix + path, body=data, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # The server closed a kept-alive connection it had left idle: it never read this
                # request, so sending it again on a new connection is safe (once).
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
            except http.client.HTTPException as exc:
                # The answer was cut short (the server process died while sending it): the request
                # may have been carried out, so it is not sent again; the next check-in asks anew.
                conn.close()
                self.local.conn = None
                raise ConnectionError(
                    f"the connection broke before the whole answer arrived ({exc!r})"
                ) from exc
        if response.status >= 400:
            try:
                error = json.loads(payload or b"{}").get("error", {})
            except ValueError:
                error = {}
            raise DeviceApiError(response.status, error.get("code", "http_error"), error.get("message", ""))
        return dict(json.loads(payload or b"{}"))


def thumbprint_of(certificate_der: bytes) -> str:
    return hashlib.sha1(certificate_der, usedforsecurity=False).hexdigest()


class SimulatedDevice:
    def __init__(
        self,
        api: Api,
        spec: DeviceSpec,
        *,
        key: rsa.RSAPrivateKey | None = None,
        failure_rate: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.api = api
        self.spec = spec
        self.key = key or new_key()
        self.failure_rate = failure_rate
        self.rng = rng or random.Random()
        self.credential = ""
        self.sequence = 0
        # Thumbprint -> subject of what is installed: the device's certificate store.
        self.store: dict[str, str] = {}
        self.after_cycle: Callable[[SimulatedDevice], None] | None = None

    def enroll(self, *, secret: str = "", token: str = "") -> None:
        answer = self.api.post(
            "enroll",
            {
                "secret": secret,
                "token": token,
                "device_id": self.spec.device_id,
                "platform": self.spec.platform,
                "public_key_pem": protocol.public_pem(self.key),
                "proof": protocol.prove(self.key),
                "agent_version": AGENT_VERSION,
            },
        )
        self.credential = str(answer["credential"])

    def check_in(self) -> dict[str, Any]:
        return self.api.post("check-in", {}, self.credential)

    def install(self, item: dict[str, Any]) -> dict[str, str]:
        """Decrypt the password, open the PFX and check it holds the promised certificate."""
        thumbprint = str(item["thumbprint"])
        try:
            password = protocol.decrypt_password(self.key, base64.b64decode(item["encrypted_password"]))
        except (ValueError, KeyError) as exc:
            return _failed(thumbprint, "password_undecryptable", str(exc))
        try:
            _key, der = protocol.open_pfx(base64.b64decode(item["pfx"]), password)
        except protocol.PfxIncomplete as exc:
            return _failed(thumbprint, "pfx_incomplete", str(exc))
        except (ValueError, KeyError) as exc:
            return _failed(thumbprint, "pfx_unreadable", f"The PFX does not open with the password: {exc}")
        finally:
            del password
        found = thumbprint_of(der)
        if found != thumbprint:
            return _failed(thumbprint, "thumbprint_mismatch", f"The PFX holds {found}, not {thumbprint}.")
        if self.failure_rate and self.rng.random() < self.failure_rate:
            return _failed(thumbprint, "install_failed", "The certificate store refused the certificate.")
        self.store[thumbprint] = x509.load_der_x509_certificate(der).subject.rfc4514_string()
        return {"thumbprint": thumbprint, "result": "installed"}

    def remove(self, item: dict[str, Any]) -> dict[str, str]:
        thumbprint = str(item["thumbprint"])
        self.store.pop(thumbprint, None)
        return {"thumbprint": thumbprint, "result": "removed"}

    def report(self, results: list[dict[str, str]]) -> dict[str, Any]:
        self.sequence = max(self.sequence + 1, time.time_ns() // 1000)
        return self.api.post("report", {"sequence": self.sequence, "results": results}, self.credential)

    def cycle(self, stats: Stats | None = None) -> dict[str, Any]:
        """One check-in and its report; returns the policy."""
        policy = self.check_in()
        results = [self.install(item) for item in policy.get("install", [])]
        results += [self.remove(item) for item in policy.get("remove", [])]
        if results:
            self.report(results)
        if stats is not None:
            stats.add(
                check_ins=1,
                installed=sum(r["result"] == "installed" for r in results),
                failed=sum(r["result"] == "failed" for r in results),
                removed=sum(r["result"] == "removed" for r in results),
            )
        if self.after_cycle is not None:
            self.after_cycle(self)
        return policy


def _failed(thumbprint: str, code: str, message: str) -> dict[str, str]:
    return {"thumbprint": thumbprint, "result": "failed", "code": code, "message": message[:500]}


def run_fleet(
    devices: list[SimulatedDevice],
    *,
    interval: float,
    until: Callable[[], bool],
    stats: Stats,
    threads: int = 8,
    on_error: Callable[[SimulatedDevice, Exception], None] | None = None,
) -> None:
    """Check every device in every ``interval`` seconds (spread out) until ``until()`` says stop."""
    lock = threading.Lock()
    due = {id(d): time.monotonic() + (i * interval / max(1, len(devices))) for i, d in enumerate(devices)}
    order: Iterator[SimulatedDevice] = _round_robin(devices)

    def worker() -> None:
        while not until():
            with lock:
                device = next(order)
                wait = due[id(device)] - time.monotonic()
                due[id(device)] = max(due[id(device)], time.monotonic()) + interval
            # Sleep in short steps so a stop request is noticed at once.
            deadline = time.monotonic() + wait
            while (left := deadline - time.monotonic()) > 0:
                if until():
                    return
                time.sleep(min(left, 0.5))
            try:
                device.cycle(stats)
            except (DeviceApiError, OSError) as exc:
                stats.add(errors=1)
                if on_error is not None:
                    on_error(device, exc)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, threads))]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def _round_robin(devices: list[SimulatedDevice]) -> Iterator[SimulatedDevice]:
    while True:
        yield from devices


def main(argv: list[str] | None = None) -> int:
    """``python -m delivery.simulator --server URL --secret S --device ID:PLATFORM:NAME ...``: a fleet
    that needs nothing but the portal's URL. ``--store-log`` appends each device's certificate store
    (thumbprints) after every check-in, one JSON line each."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog="device-simulator")
    parser.add_argument("--server", required=True)
    parser.add_argument("--secret", required=True, help="The tenant's device enrolment secret.")
    parser.add_argument("--device", action="append", required=True, help="INTUNE_ID:PLATFORM:NAME")
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--store-log", help="File to append each device's store to after each check-in.")
    args = parser.parse_args(argv)
    api = Api(args.server)
    fleet = []
    for text in args.device:
        device_id, platform, name = text.split(":", 2)
        device = SimulatedDevice(api, DeviceSpec(device_id, platform, name), failure_rate=args.failure_rate)
        device.enroll(secret=args.secret)
        fleet.append(device)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stats = Stats()
    log_lock = threading.Lock()

    def log_store(device: SimulatedDevice) -> None:
        with log_lock, open(args.store_log, "a") as out:
            out.write(json.dumps({"device": device.spec.name, "store": sorted(device.store)}) + "\n")

    if args.store_log:
        for device in fleet:
            device.after_cycle = log_store

    def report_error(device: SimulatedDevice, exc: Exception) -> None:
        pass

    run_fleet(fleet, interval=args.interval, until=stop.is_set, stats=stats, threads=2, on_error=report_error)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
