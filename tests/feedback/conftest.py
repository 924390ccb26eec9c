import pytest

from apps.accounts.models import Role
from apps.accounts.services import user_create


@pytest.fixture
def agent(db):  # type: ignore[no-untyped-def]
    return user_create(username="ann", password="pw-ann-123", role=Role.AGENT)


@pytest.fixture
def admin_client(db):  # type: ignore[no-untyped-def]
    """A Django client signed in as a Deskpilot admin."""
    from django.test import Client

    client = Client()
    client.force_login(user_create(username="ada", password="pw-ada-123", role=Role.ADMIN))
    return client
