"""Small directory factories shared by the directory tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from directory.models import Device, DirectoryUser, Group, Platform
from portal.models import User


@pytest.fixture
def make_user(db: None) -> Callable[..., DirectoryUser]:
    def make(upn: str, display_name: str | None = None, **extra: Any) -> DirectoryUser:
        return DirectoryUser.objects.create(upn=upn, display_name=display_name or upn.split("@")[0], **extra)

    return make


@pytest.fixture
def make_group(db: None) -> Callable[..., Group]:
    def make(name: str, kind: str = Group.Kind.USER, **extra: Any) -> Group:
        return Group.objects.create(display_name=name, kind=kind, **extra)

    return make


@pytest.fixture
def make_device(db: None) -> Callable[..., Device]:
    def make(name: str, platform: str = Platform.WINDOWS, **extra: Any) -> Device:
        version = extra.pop("os_version", "10.0.22631.4890")
        device = Device(name=name, platform=platform, **extra)
        device.set_os_version(version)
        device.save()
        return device

    return make


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(intune_admin: User) -> Client:
    return signed_in(intune_admin)


@pytest.fixture
def helpdesk_client(helpdesk: User) -> Client:
    return signed_in(helpdesk)
