"""Where the evaluation reads what devices reported.

The status table lives in the ``delivery`` app, above this one (its rows name certificates,
which ``profiles`` may not import). That app registers its model here in ``AppConfig.ready()``;
the evaluation only needs rows with ``profile_id``, ``device_id`` and ``status``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models
from django.db.models import QuerySet

_SOURCE: list[type[models.Model]] = []


def register_reported_states(model: type[models.Model]) -> None:
    _SOURCE[:] = [model]


def reported(**filters: Any) -> QuerySet[Any] | None:
    """The reported states matching ``filters`` (None while nothing is registered)."""
    if not _SOURCE:
        return None
    found: QuerySet[Any] = _SOURCE[0]._default_manager.filter(**filters)
    return found


def reported_for_devices(device_ids: Iterable[int]) -> list[tuple[int, int, str]]:
    """(profile id, device id, status) for every state of these devices."""
    rows = reported(device_id__in=list(device_ids))
    if rows is None:
        return []
    return list(rows.values_list("profile_id", "device_id", "status"))
