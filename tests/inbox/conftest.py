import pytest
from django.test import Client

from apps.accounts.models import Role
from apps.accounts.services import user_create


@pytest.fixture
def agent(db):  # type: ignore[no-untyped-def]
    return user_create(username="ann", password="pw-ann-123", role=Role.AGENT)


@pytest.fixture
def other_agent(db):  # type: ignore[no-untyped-def]
    return user_create(username="bob", password="pw-bob-123", role=Role.AGENT)


@pytest.fixture
def agent_client(agent) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(agent)
    return client
