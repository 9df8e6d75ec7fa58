"""``python -m connectors.agent --server URL [--enroll TOKEN] --state-dir DIR``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from connectors.agent import DEFAULT_KEY_NAME, DEFAULT_PROVIDER, EXPORT_PASSPHRASE_ENV, PASSPHRASE_ENV
from connectors.agent.client import ApiError
from connectors.agent.keystore import KeyStore, KeyStoreError
from connectors.agent.runner import Agent, AgentStopped, Config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="connector", description="PFX Portal certificate connector agent.")
    parser.add_argument("--server", help="Portal URL, e.g. https://pfx.contoso.com")
    parser.add_argument(
        "--state-dir", required=True, type=Path, help="Folder for the credential and key store."
    )
    parser.add_argument("--enroll", metavar="TOKEN", help="One-time enrollment token (first run only).")
    parser.add_argument("--name", default="", help="Connector name shown in the portal.")
    parser.add_argument("--provider", default=DEFAULT_PROVIDER, help="Key storage provider name.")
    parser.add_argument("--key-name", default=DEFAULT_KEY_NAME, help="Key name within the provider.")
    parser.add_argument("--key-size", type=int, default=2048, choices=(2048, 3072, 4096))
    parser.add_argument("--interval", type=float, help="Seconds between heartbeats (default: the portal's).")
    parser.add_argument("--host-name", help="Machine name to report (default: this host's).")
    parser.add_argument("--once", action="store_true", help="Publish, check in and work once, then exit.")
    parser.add_argument(
        "--log-level", default="INFO", type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR")
    )
    parser.add_argument(
        "--passphrase-env", default=PASSPHRASE_ENV, help="Variable holding the key store passphrase."
    )
    parser.add_argument(
        "--export-key",
        type=Path,
        metavar="FILE",
        help=f"Export the key, encrypted under ${EXPORT_PASSPHRASE_ENV}.",
    )
    parser.add_argument(
        "--import-key",
        type=Path,
        metavar="FILE",
        help=f"Import a key exported with ${EXPORT_PASSPHRASE_ENV}.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s connector %(message)s")
    log = logging.getLogger("connector")
    # Under manage.py the portal's logging is set up already and basicConfig changes nothing.
    log.setLevel(args.log_level)
    passphrase = os.environ.get(args.passphrase_env, "")
    try:
        if args.export_key or args.import_key:
            store = KeyStore(args.state_dir, passphrase)
            export_passphrase = os.environ.get(EXPORT_PASSPHRASE_ENV, "")
            if not export_passphrase:
                log.error("set %s to the passphrase protecting the exported key", EXPORT_PASSPHRASE_ENV)
                return 2
            if args.export_key:
                store.export(args.provider, args.key_name, args.export_key, export_passphrase)
                log.info("exported %s / %s to %s", args.provider, args.key_name, args.export_key)
            else:
                store.import_(args.provider, args.key_name, args.import_key, export_passphrase)
                log.info("imported %s / %s", args.provider, args.key_name)
            return 0
        if not args.server:
            log.error("--server is required")
            return 2
        config = Config(
            server=args.server,
            state_dir=args.state_dir,
            passphrase=passphrase,
            provider=args.provider,
            key_name=args.key_name,
            key_size=args.key_size,
            name=args.name,
            interval=args.interval,
        )
        if args.host_name:
            config.host_name = args.host_name
        agent = Agent(config)
        if args.enroll:
            agent.enroll(args.enroll)
        agent.run(once=args.once)
    except AgentStopped as exc:
        log.error("%s", exc)
        return 3
    except (KeyStoreError, ApiError) as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
