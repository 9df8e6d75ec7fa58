from __future__ import annotations

import pytest
from django.urls import reverse

from directory import panels

pytestmark = pytest.mark.django_db


def test_another_app_can_add_a_section_to_the_user_page(
    helpdesk_client, make_user, settings, tmp_path
) -> None:
    settings.PORTAL_ENFORCE_MFA = False
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "panel.html").write_text(
        '<section id="extra">{{ panel.note }} for {{ directory_user.upn }}</section>'
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [*settings.TEMPLATES[0]["DIRS"], tmp_path]}]
    user = make_user("megan@contoso.com")
    panel = panels.UserPanel("extra/panel.html", lambda request, u: {"note": "2 certificates"})
    hidden = panels.UserPanel("extra/hidden.html", lambda request, u: None)
    registered = dict(panels._USER_PANELS)
    panels.register_user_panel(panel)
    panels.register_user_panel(hidden)
    try:
        body = helpdesk_client.get(reverse("directory:user", args=[user.object_id])).content.decode()
    finally:
        # Put back the panels the installed apps registered.
        panels._USER_PANELS.clear()
        panels._USER_PANELS.update(registered)
    assert '<section id="extra">2 certificates for megan@contoso.com</section>' in body
