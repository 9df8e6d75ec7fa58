from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.http import Http404, HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Production tenants are invite-only: an admin with the Roles permission invites people.
        return bool(settings.PORTAL_OPEN_SIGNUP)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin: Any) -> bool:
        # Entra ID sign-in only connects to accounts an admin has invited (matched by e-mail).
        return False

    def get_app(self, request: HttpRequest, provider: Any, client_id: str | None = None) -> Any:
        # A provider with no app (Entra ID sign-in not configured) has no sign-in pages: its login
        # and callback URLs answer 404, as allauth's own OpenID Connect views do.
        from allauth.socialaccount.models import SocialApp

        try:
            return super().get_app(request, provider, client_id)
        except SocialApp.DoesNotExist:
            raise Http404("This sign-in method is not set up.") from None
