from collections.abc import Iterator

import pytest

from tests.webhooks.receiver import Receiver, start_receiver


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:  # type: ignore[no-untyped-def]
    """A loopback receiver, with loopback allowed as a webhook target."""
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    found, server = start_receiver()
    yield found
    server.shutdown()
    server.server_close()
