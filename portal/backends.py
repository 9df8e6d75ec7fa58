"""Authentication backends: Django's and allauth's, reading the signed-in admin without the ORM's
query building (``portal.lib.lean``), since every request of a signed-in admin reads them."""

from __future__ import annotations

from typing import Any

from allauth.account.auth_backends import AuthenticationBackend
from django.contrib.auth.backends import ModelBackend

from portal.lib import lean
from portal.models import User


def _user(backend: ModelBackend, user_id: Any) -> User | None:
    user = lean.get(User, "pk", user_id)
    return user if user is not None and backend.user_can_authenticate(user) else None


class PortalModelBackend(ModelBackend):
    def get_user(self, user_id: Any) -> User | None:
        return _user(self, user_id)


class PortalAccountBackend(AuthenticationBackend):
    def get_user(self, user_id: Any) -> User | None:
        return _user(self, user_id)
