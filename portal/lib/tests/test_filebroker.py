"""The file broker: a message is invisible to workers until it is whole."""

from __future__ import annotations

import contextlib
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from kombu import Connection

from portal.lib import filebroker


def _channel(folder: Path) -> Any:
    connection = Connection(
        transport=filebroker.Transport,
        transport_options={"data_folder_in": str(folder), "data_folder_out": str(folder)},
    )
    return connection.default_channel


def test_a_message_being_written_is_not_taken_by_a_worker_until_it_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = _channel(tmp_path)
    seen_while_writing: list[str] = []
    rename = Path.replace

    def replace_after_a_reader_looked(self: Path, target: Path) -> Path:
        with contextlib.suppress(Empty):
            seen_while_writing.append(str(channel._get("celery")))
        return rename(self, target)

    monkeypatch.setattr(Path, "replace", replace_after_a_reader_looked)
    channel._put("celery", {"body": "whole"})

    assert seen_while_writing == []
    assert channel._get("celery") == {"body": "whole"}
    with pytest.raises(Empty):
        channel._get("celery")


def test_the_portal_serves_filesystem_broker_urls_with_it() -> None:
    from kombu.transport import resolve_transport

    import portal.celery  # noqa: F401  (installs the transport)

    assert resolve_transport("filesystem") is filebroker.Transport  # type: ignore[comparison-overlap]
