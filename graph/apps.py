from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from django.apps import AppConfig
from django.db import transaction

if TYPE_CHECKING:
    from certs.models import Certificate
    from profiles.models import Profile


def tenant_connected() -> bool:
    from graph.models import TenantConnection

    return TenantConnection.current() is not None


def _upload(certificate_ids: Sequence[int]) -> None:
    from graph.uploads import queue_uploads

    # Without a tenant connection they stay "stored, not uploaded" until one is set up.
    if tenant_connected():
        queue_uploads(certificate_ids)


def upload_stored(sender: object, *, certificate_ids: Sequence[int], **kwargs: Any) -> None:
    """Stored certificates are queued for upload to Intune once their transaction commits."""
    transaction.on_commit(partial(_upload, list(certificate_ids)))


def delete_from_intune(sender: object, *, certificate: Certificate, **kwargs: Any) -> None:
    """A deleted certificate's copy in Intune is deleted after its transaction commits."""
    from graph.uploads import certificate_deleted

    certificate_deleted(certificate)


def resend_rewrapped(sender: object, *, certificate_ids: Sequence[int], **kwargs: Any) -> None:
    """Passwords re-wrapped to a new key are re-sent to Intune once their transaction commits."""
    from graph.key_resend import queue

    queue(certificate_ids)


def profile_changed(sender: object, *, profile: Profile, **kwargs: Any) -> None:
    """A created or changed profile is marked "changed here" and sent to Intune after commit."""
    from graph.profile_sync import queue

    queue(profile)


def profile_deleting(sender: object, *, profile: Profile, **kwargs: Any) -> None:
    from graph.profile_sync import queue_delete

    queue_delete(profile)


class GraphConfig(AppConfig):
    name = "graph"
    verbose_name = "Microsoft Graph"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from certs.hooks import register_delivery
        from certs.signals import certificate_deleting, certificates_rewrapped, certificates_stored

        certificates_stored.connect(upload_stored, dispatch_uid="graph.upload_stored")
        certificate_deleting.connect(delete_from_intune, dispatch_uid="graph.delete_from_intune")
        register_delivery("graph", tenant_connected)
        certificates_rewrapped.connect(resend_rewrapped, dispatch_uid="graph.resend_rewrapped")

        from certs.hooks import register_key_blocker
        from graph.key_resend import intune_blocker

        register_key_blocker("graph", intune_blocker)

        from connectors import hooks as connector_hooks
        from graph.views_intune import connectors_section, rotation_section

        connector_hooks.register_rotation_section(
            connector_hooks.RotationSection("graph/_rotation_intune.html", rotation_section)
        )
        connector_hooks.register_connectors_section(
            connector_hooks.ConnectorsSection("graph/_intune_connectors.html", connectors_section)
        )

        from graph import status_sync
        from profiles.states import IntuneSide, register_intune

        register_intune(
            IntuneSide(last_sync=status_sync.last_sync, profile_summary=status_sync.profile_summary)
        )
        from directory.panels import register_user_clock

        register_user_clock("intune", status_sync.user_clock)

        from graph.views_intune import profile_section
        from profiles import hooks as profile_hooks

        profile_hooks.profile_changed.connect(profile_changed, dispatch_uid="graph.profile_changed")
        profile_hooks.profile_deleting.connect(profile_deleting, dispatch_uid="graph.profile_deleting")
        profile_hooks.register_profile_section(
            profile_hooks.ProfileSection("graph/_profile_sync.html", profile_section, order=10)
        )
