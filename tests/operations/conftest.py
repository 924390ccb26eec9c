"""Operations tests reuse the copilot's fixtures: a tiny knowledge base and classifier, and
the gateway isolated (offline drafter, no budgets) for every test."""

from tests.copilot.conftest import (  # noqa: F401 (fixtures)
    _fake_openai_server,
    _isolated_gateway,
    active_classifier,
    copilot_ready,
    fake_openai,
    tiny_classifier_artifact,
    tiny_kb,
)
from tests.webhooks.conftest import receiver  # noqa: F401 (fixture)
