"""A status sync writes no audit event, yet the kept user page shows when Intune was last read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from delivery.tests import builders as b
from graph.models import StatusSyncRun
from portal import summaries
from portal.models import User
from profiles.tests import factories as f

pytestmark = pytest.mark.django_db


def test_a_finished_intune_status_sync_shows_on_the_kept_user_page_at_once(
    make_admin: Callable[..., User], settings: Any
) -> None:
    summaries.forget()
    settings.PORTAL_ENFORCE_MFA = False
    admin = Client()
    admin.force_login(make_admin("help_desk_operator"))
    user = f.user("alice@contoso.example")
    b.state(b.profile("S/MIME encryption"), f.device("PC-ALICE", user), b.certificate(user))
    page = reverse("directory:user", args=[user.object_id])
    assert 'data-testid="intune-last-sync"' not in admin.get(page).content.decode()

    # Nothing the sync read changed this user's rows.
    finished = timezone.now().replace(year=2031, month=5, day=6, hour=7, minute=8)
    StatusSyncRun.objects.create(state=StatusSyncRun.State.DONE, finished_at=finished)

    assert "last sync, 2031-05-06 07:08" in admin.get(page).content.decode()
