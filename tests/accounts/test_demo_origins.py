"""The demo works on any port: its widget key allows the origin `up --demo` serves on."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from apps.accounts.models import WidgetKey
from apps.core.launcher import Launcher, LaunchOptions

pytestmark = pytest.mark.django_db


def _create(*origins: str) -> str:
    out = StringIO()
    call_command(
        "widgetkey_create",
        "Demo site",
        "--if-missing",
        *(f"--origin={origin}" for origin in origins),
        stdout=out,
        stderr=StringIO(),
    )
    return out.getvalue().strip()


def test_the_demo_key_allows_each_origin_the_demo_is_served_on(client):
    # given: the demo loaded once on the default port
    first = _create("http://localhost:8000", "http://127.0.0.1:8000")
    # when: it is served again on port 8101
    again = _create("http://localhost:8101", "http://127.0.0.1:8101")
    # then: the same key, now allowing both ports; the demo page on 8101 embeds it
    assert again == first and WidgetKey.objects.count() == 1
    assert WidgetKey.objects.get().allowed_origins == [
        "http://localhost:8000", "http://127.0.0.1:8000",
        "http://localhost:8101", "http://127.0.0.1:8101",
    ]  # fmt: skip
    page = client.get("/widget/demo/", HTTP_HOST="127.0.0.1:8101").content.decode()
    assert f'data-widget-key="{first}"' in page
    assert "No active widget key allows" not in page


def test_a_bad_origin_is_refused_and_the_key_left_as_it_was():
    # given
    _create("http://localhost:8000")
    # when / then
    with pytest.raises(Exception, match="is not an origin"):
        _create("http://localhost:8101/path")
    assert WidgetKey.objects.get().allowed_origins == ["http://localhost:8000"]


@pytest.mark.parametrize(
    ("host", "origins"),
    [
        ("127.0.0.1", ["http://localhost:8101", "http://127.0.0.1:8101"]),
        ("0.0.0.0", ["http://localhost:8101", "http://127.0.0.1:8101"]),  # noqa: S104
        ("demo.internal", [
            "http://localhost:8101", "http://127.0.0.1:8101", "http://demo.internal:8101",
        ]),
    ],
)  # fmt: skip
def test_up_names_the_origins_it_serves_on(host, origins, tmp_path):
    launcher = Launcher(LaunchOptions(home=tmp_path, base_dir=tmp_path, host=host, port=8101))
    assert launcher.origins() == origins
