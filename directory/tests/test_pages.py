from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from directory.models import Device, Group, Platform

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def no_mfa(settings):
    settings.PORTAL_ENFORCE_MFA = False


@pytest.fixture
def tenant(make_user, make_group, make_device):
    megan = make_user(
        "megan.o'neil@contoso.com",
        "Megan O'Neil",
        mail="megan.o'neil@contoso.com",
        proxy_addresses=["SMTP:megan.o'neil@contoso.com", "smtp:moneil@contoso.com"],
        department="Finance",
    )
    adele = make_user("adele.vance@contoso.com", "Adele Vance", department="Sales")
    guest = make_user(
        "kari_fabrikam.com#EXT#@contoso.onmicrosoft.com", "Kari (Fabrikam)", mail="kari@fabrikam.com"
    )
    smime = make_group("S/MIME Users")
    smime.users.add(megan, guest)
    make_group("Legacy Wi-Fi Users")
    laptop = make_device("CON-7F3K2QX", primary_user=megan, os_edition="windows10Enterprise")
    phone = make_device("Adele's iPhone", platform=Platform.IOS, os_version="18.3.2", primary_user=adele)
    windows = make_group("All Windows Devices", kind=Group.Kind.DEVICE)
    windows.devices.add(laptop)
    return {"megan": megan, "adele": adele, "guest": guest, "smime": smime, "laptop": laptop, "phone": phone}


def test_an_anonymous_visitor_is_sent_to_sign_in(client: Client, tenant) -> None:
    for name in ("users", "groups", "devices", "import"):
        response = client.get(reverse(f"directory:{name}"))
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_an_admin_without_directory_read_is_refused(make_admin, tenant) -> None:
    from directory.tests.conftest import signed_in

    client = signed_in(make_admin(None))
    assert client.get(reverse("directory:users")).status_code == 403
    assert client.get(reverse("directory:user", args=[tenant["megan"].object_id])).status_code == 403


def test_the_users_page_lists_and_searches_by_upn_name_and_mail(helpdesk_client: Client, tenant) -> None:
    url = reverse("directory:users")
    page = helpdesk_client.get(url).content.decode()
    assert "Megan O&#x27;Neil" in page and "Adele Vance" in page and "<html" in page

    by_upn = helpdesk_client.get(url, {"q": "o'neil@"}).content.decode()
    assert "Megan O&#x27;Neil" in by_upn and "Adele Vance" not in by_upn
    by_name = helpdesk_client.get(url, {"q": "adele"}).content.decode()
    assert "Adele Vance" in by_name and "Megan" not in by_name
    by_mail = helpdesk_client.get(url, {"q": "kari@fabrikam"}).content.decode()
    assert "Kari (Fabrikam)" in by_mail and "Adele" not in by_mail


def test_the_htmx_search_returns_only_the_results_fragment(helpdesk_client: Client, tenant) -> None:
    response = helpdesk_client.get(reverse("directory:users"), {"q": "megan"}, headers=HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="results">')
    assert "<html" not in body and "<form" not in body
    assert "Megan O&#x27;Neil" in body and "Adele" not in body


def test_search_links_work_without_javascript(helpdesk_client: Client, tenant) -> None:
    body = helpdesk_client.get(reverse("directory:users")).content.decode()
    assert 'method="get"' in body and 'hx-get="/users/"' in body
    assert 'href="?sort=-name"' in body  # the sort header is a real link too


def test_users_sort_by_a_column_and_reject_an_unknown_sort(helpdesk_client: Client, tenant) -> None:
    url = reverse("directory:users")
    body = helpdesk_client.get(url, {"sort": "-name"}).content.decode()
    assert body.index("Megan O&#x27;Neil") < body.index("Adele Vance")
    assert helpdesk_client.get(url, {"sort": "password"}).status_code == 400


def test_the_status_filter_shows_removed_users_only_when_asked(helpdesk_client: Client, tenant) -> None:
    from django.utils import timezone

    tenant["adele"].removed_at = timezone.now()
    tenant["adele"].save()
    url = reverse("directory:users")
    assert "Adele Vance" not in helpdesk_client.get(url).content.decode()
    assert "Adele Vance" in helpdesk_client.get(url, {"state": "removed"}).content.decode()


def test_the_user_page_shows_identity_proxy_addresses_groups_and_devices(
    helpdesk_client: Client, tenant
) -> None:
    megan = tenant["megan"]
    body = helpdesk_client.get(reverse("directory:user", args=[megan.object_id])).content.decode()
    assert str(megan.object_id) in body
    assert "smtp:moneil@contoso.com" in body
    assert "S/MIME Users" in body
    assert "CON-7F3K2QX" in body


def test_an_unknown_user_is_not_found(helpdesk_client: Client, tenant) -> None:
    response = helpdesk_client.get("/users/00000000-0000-4000-8000-000000000000/")
    assert response.status_code == 404


def test_the_groups_page_filters_by_kind_and_counts_members(helpdesk_client: Client, tenant) -> None:
    url = reverse("directory:groups")
    users_only = helpdesk_client.get(url, {"kind": "user"}).content.decode()
    assert "S/MIME Users" in users_only and "All Windows Devices" not in users_only
    body = helpdesk_client.get(url, {"q": "s/mime"}, headers=HTMX).content.decode()
    assert '<td class="num">2</td>' in body


def test_a_group_page_lists_its_users_or_its_devices(helpdesk_client: Client, tenant) -> None:
    smime = helpdesk_client.get(reverse("directory:group", args=[tenant["smime"].object_id])).content.decode()
    assert "Megan O&#x27;Neil" in smime and "Adele" not in smime
    windows = Group.objects.get(display_name="All Windows Devices")
    body = helpdesk_client.get(reverse("directory:group", args=[windows.object_id])).content.decode()
    assert "CON-7F3K2QX" in body and "iPhone" not in body
    empty = Group.objects.get(display_name="Legacy Wi-Fi Users")
    assert (
        "no members"
        in helpdesk_client.get(reverse("directory:group", args=[empty.object_id])).content.decode()
    )


def test_a_group_member_search_with_htmx_returns_the_fragment(helpdesk_client: Client, tenant) -> None:
    url = reverse("directory:group", args=[tenant["smime"].object_id])
    body = helpdesk_client.get(url, {"q": "kari"}, headers=HTMX).content.decode()
    assert body.lstrip().startswith('<div id="results">')
    assert "Kari" in body and "Megan" not in body


def test_the_devices_page_searches_by_platform_os_and_primary_user(helpdesk_client: Client, tenant) -> None:
    url = reverse("directory:devices")
    assert "Adele&#x27;s iPhone" in helpdesk_client.get(url, {"q": "iPadOS"}).content.decode()
    by_os = helpdesk_client.get(url, {"q": "22631"}).content.decode()
    assert "CON-7F3K2QX" in by_os and "iPhone" not in by_os
    by_user = helpdesk_client.get(url, {"q": "megan"}).content.decode()
    assert "CON-7F3K2QX" in by_user and "iPhone" not in by_user
    by_platform = helpdesk_client.get(url, {"platform": Platform.IOS}).content.decode()
    assert "iPhone" in by_platform and "CON-7F3K2QX" not in by_platform


def test_devices_sort_by_os_version_numerically(helpdesk_client: Client, make_device) -> None:
    make_device("OLD", os_version="10.0.9.1")
    make_device("NEW", os_version="10.0.10.1")
    body = helpdesk_client.get(reverse("directory:devices"), {"sort": "os"}).content.decode()
    assert body.index(">OLD<") < body.index(">NEW<")


def test_the_device_page_shows_platform_edition_version_user_and_check_in(
    helpdesk_client: Client, tenant
) -> None:
    laptop: Device = tenant["laptop"]
    body = helpdesk_client.get(reverse("directory:device", args=[laptop.device_id])).content.decode()
    assert "Windows 10 and later" in body
    assert "Enterprise" in body
    assert "10.0.22631.4890" in body
    assert "Megan O&#x27;Neil" in body
    assert "Last check-in" in body


def test_pages_refuse_post(helpdesk_client: Client, tenant) -> None:
    assert helpdesk_client.post(reverse("directory:users")).status_code == 405


def test_the_import_link_shows_only_to_admins_who_can_import(
    helpdesk_client: Client, admin_client: Client, tenant
) -> None:
    url = reverse("directory:users")
    assert reverse("directory:import") not in helpdesk_client.get(url).content.decode()
    assert reverse("directory:import") in admin_client.get(url).content.decode()
