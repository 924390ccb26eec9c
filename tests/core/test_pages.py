"""Small things every page gets right: the icon, the admin's names, the demo's login hint."""

from __future__ import annotations

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db


def test_every_kind_of_page_names_the_icon_and_favicon_ico_leads_to_it(client):
    # when
    pages = [client.get(path).content.decode() for path in ("/inbox/login/", "/admin/login/")]
    favicon = client.get("/favicon.ico")
    # then
    assert all('rel="icon" href="/static/img/favicon.svg"' in page for page in pages)
    assert (favicon.status_code, favicon["Location"]) == (301, "/static/img/favicon.svg")
    assert finders.find("img/favicon.svg") is not None


def test_the_admin_names_its_models_in_good_english(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert "Reply cache entries" in page and "entrys" not in page


def test_the_login_page_shows_where_the_demo_logins_are_only_in_the_demo(client, settings):
    # given: no demo
    settings.DEMO = False
    assert "demo_logins.txt" not in client.get("/inbox/login/").content.decode()
    # when: the demo runs
    settings.DEMO = True
    page = client.get("/inbox/login/").content.decode()
    # then: the real path of the file
    expected = (settings.DESKPILOT_HOME / "demo_logins.txt").resolve()
    assert f"<code>{expected}</code>" in page
