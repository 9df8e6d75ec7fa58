"""A local Microsoft Graph for demos and tests: sign-in, the directory, and userPfxCertificates.

It speaks HTTPS with a throwaway CA made at start-up (msal refuses plain-HTTP
authorities), answers the OpenID discovery and client-credentials token calls msal
makes, and serves the Graph endpoints the portal uses with Graph's id format,
status codes, paging, redaction, throttling and error shapes. Its state lives in
memory; ``/_emulator/...`` endpoints let a test or a demo read and change it.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devtools.emulator.handler import Handler, Server
from devtools.emulator.state import Config, State, seed_from_demo
from devtools.emulator.tls import make_tls_files

if TYPE_CHECKING:
    from graph.models import TenantConnection
    from portal.audit import Actor


class Emulator:
    """The emulator as an object: ``start()`` serves in a background thread, ``serve_forever()`` in this one."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls_dir: Path,
        config: Config | None = None,
        public_hosts: Iterable[str] = (),
        seed: bool = True,
    ) -> None:
        self.state = State(config=config or Config())
        if seed:
            seed_from_demo(self.state)
        hosts = {"127.0.0.1", "localhost", *public_hosts}
        if host not in {"0.0.0.0", "::"}:
            hosts.add(host)
        self.ca_path, cert_path, key_path = make_tls_files(tls_dir, sorted(hosts))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self.httpd = Server((host, port), Handler)
        # The handshake happens in the request's own thread, so a slow client holds up no one else.
        self.httpd.socket = context.wrap_socket(
            self.httpd.socket, server_side=True, do_handshake_on_connect=False
        )
        self.httpd.state = self.state
        self.port = self.httpd.server_address[1]
        name = next(iter(public_hosts), None) or ("127.0.0.1" if host in {"0.0.0.0", "::"} else host)
        self.url = f"https://{name}:{self.port}"
        self.httpd.base_url = self.url
        self._thread: threading.Thread | None = None

    @property
    def config(self) -> Config:
        return self.state.config

    def connect_portal(self, actor: Actor | None = None, **options: Any) -> TenantConnection:
        """Point the portal's tenant connection at this emulator, signing in with its client secret;
        ``options`` are further ``ConnectionInput`` fields (the write budget)."""
        # Imported here: the emulator also runs on its own, with no portal database behind it.
        from graph import connection
        from portal.audit import Actor

        return connection.save_connection(
            actor or Actor.system("test"),
            connection.ConnectionInput(
                tenant_id=self.config.tenant_id,
                client_id=self.config.client_id,
                cloud="global",
                credential_kind="secret",
                secret=self.config.client_secret,
                authority_url=self.url,
                graph_url=self.url,
                ca_certificate=self.ca_path.read_text(),
                **options,
            ),
        )

    def start(self) -> Emulator:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="graph-emulator", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
