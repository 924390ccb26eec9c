"""The widget key's identity secret: shown to admins, rotated by an admin action, one per key."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.accounts.models import Role, WidgetKey
from apps.accounts.services import user_create, widget_key_create

PASSWORD = "pw-123456789"


@pytest.fixture
def admin_client(client, db):  # type: ignore[no-untyped-def]
    user_create(username="root", password=PASSWORD, role=Role.ADMIN)
    client.login(username="root", password=PASSWORD)
    return client


@pytest.mark.django_db
def test_admin_sees_the_secret_read_only(admin_client):
    # given
    widget_key = widget_key_create(site_name="Shop", allowed_origins=["https://shop.example.com"])
    # when
    page = admin_client.get(f"/admin/accounts/widgetkey/{widget_key.pk}/change/")
    # then
    assert page.status_code == 200
    html = page.content.decode()
    assert widget_key.identity_secret in html
    assert 'name="identity_secret"' not in html  # shown, not an input
    assert 'name="identity_required"' in html


@pytest.mark.django_db
def test_admin_cannot_set_the_secret_by_posting_it(admin_client):
    # given
    widget_key = widget_key_create(site_name="Shop", allowed_origins=["https://shop.example.com"])
    secret = widget_key.identity_secret
    # when
    response = admin_client.post(
        f"/admin/accounts/widgetkey/{widget_key.pk}/change/",
        {
            "site_name": "Shop",
            "allowed_origins": "https://shop.example.com",
            "is_active": "on",
            "identity_required": "on",
            "identity_secret": "chosen-by-me",
        },
    )
    # then
    assert response.status_code == 302
    widget_key.refresh_from_db()
    assert widget_key.identity_secret == secret
    assert widget_key.identity_required is True


@pytest.mark.django_db
def test_admin_action_rotates_the_secret_of_the_selected_keys_only(admin_client):
    # given
    chosen = widget_key_create(site_name="Shop", allowed_origins=[])
    other = widget_key_create(site_name="Blog", allowed_origins=[])
    before = {key.pk: key.identity_secret for key in (chosen, other)}
    # when
    response = admin_client.post(
        "/admin/accounts/widgetkey/",
        {"action": "identity_secret_rotate", "_selected_action": [chosen.pk]},
        follow=True,
    )
    # then
    assert "signatures made with the old one no longer match" in response.content.decode()
    chosen.refresh_from_db()
    other.refresh_from_db()
    assert chosen.identity_secret not in ("", before[chosen.pk])
    assert other.identity_secret == before[other.pk]


@pytest.mark.django_db
def test_an_agent_cannot_open_the_widget_key_admin(client):
    # given
    widget_key = widget_key_create(site_name="Shop", allowed_origins=[])
    user_create(username="ann", password=PASSWORD, role=Role.AGENT)
    client.login(username="ann", password=PASSWORD)
    # when
    response = client.get(f"/admin/accounts/widgetkey/{widget_key.pk}/change/")
    # then
    assert response.status_code == 302
    assert widget_key.identity_secret not in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_each_existing_key_its_own_secret():
    # given: the schema before identity secrets, with two keys
    before = [("accounts", "0003_widgetkey_idempotencyrecord")]
    after = [("accounts", "0004_widgetkey_identity")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old_apps = executor.loader.project_state(before).apps
        old_widget_key = old_apps.get_model("accounts", "WidgetKey")
        for n in range(2):
            old_widget_key.objects.create(public_key=f"wk_old{n}", site_name=f"Old {n}")
        # when
        executor = MigrationExecutor(connection)
        executor.migrate(after)
    finally:
        # Whatever happens, later tests get the current schema back: every app's, since
        # going back unapplied the migrations of other apps that depend on accounts' later
        # ones (tickets 0005 and after).
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    # then
    secrets = list(WidgetKey.objects.order_by("pk").values_list("identity_secret", flat=True))
    assert len(secrets) == 2
    assert len(set(secrets)) == 2
    assert all(len(secret) >= 43 for secret in secrets)
    assert not WidgetKey.objects.filter(identity_required=True).exists()
