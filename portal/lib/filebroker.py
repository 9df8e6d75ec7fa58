"""The demo stack's file-based Celery broker, with messages that appear only when whole.

Kombu's ``filesystem://`` transport creates a message file and then fills it, and its readers
move a file away without waiting for the writer's lock. A worker polling every few
milliseconds (``CELERY_BROKER_POLL_MS``) can so take a message while it is still empty, and stops
with a JSON error. Here a message is written under a name no reader takes (it does not end in
``.msg``) and renamed into place; a rename within one folder is atomic, so a reader sees either
nothing or the whole message. Readers are kombu's own.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]  # as kombu's own
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = Path(self.data_folder_out) / name
        partial = final.with_name(name + ".part")
        try:
            partial.write_bytes(str_to_bytes(dumps(payload)))
            partial.replace(final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


def install() -> None:
    """Serve ``filesystem://`` broker URLs with this transport."""
    TRANSPORT_ALIASES["filesystem"] = f"{__name__}:Transport"
