import pytest

from apps.accounts.models import Role
from apps.accounts.services import user_create


@pytest.fixture
def agent(db):  # type: ignore[no-untyped-def]
    return user_create(username="ann", password="pw-ann-123", role=Role.AGENT)
