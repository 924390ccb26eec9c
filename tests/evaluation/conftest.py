"""The copilot's fixtures (tiny knowledge base, tiny classifier, isolated gateway): an
evaluation runs the copilot's pipeline."""

from tests.copilot.conftest import (  # noqa: F401
    _fake_openai_server,
    _isolated_gateway,
    _pii_analyzer_warm,
    active_classifier,
    copilot_ready,
    fake_openai,
    tiny_classifier_artifact,
    tiny_kb,
)
