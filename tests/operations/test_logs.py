"""Structured logs: JSON lines with the ids of what each line is about, never a customer's
text; a request id on every request's lines and in its answer."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from apps.copilot.services import pipeline_run
from apps.core.logcontext import LogContextFilter
from apps.safety.logs import PiiLogFilter
from tests.copilot.conftest import customer_ticket

SECRET_SENTENCE = "Zanzibar quokka marmalade: my password reset link expired twice"


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The root logger writing at DEBUG through the configured JSON formatter and filters."""
    configured = settings.LOGGING
    assert configured["handlers"]["console"]["filters"] == ["pii", "context"]
    options = {k: v for k, v in configured["formatters"]["json"].items() if k != "()"}
    fmt = options.pop("format")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter(fmt, **options))
    handler.addFilter(PiiLogFilter())
    handler.addFilter(LogContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(level)


def _records(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_production_logs_are_json_and_local_ones_text():
    # given / when: the settings module's choice (tests run with DEBUG off)
    # then
    assert settings.LOG_FORMAT == "json"
    assert settings.LOGGING["handlers"]["console"]["formatter"] == "json"


@pytest.mark.django_db
def test_a_pipeline_run_logs_json_with_its_ids_and_never_the_customers_text(
    copilot_ready, json_lines
):
    # given
    ticket, message = customer_ticket(SECRET_SENTENCE)
    # when: the copilot drafts, with every logger at DEBUG
    draft = pipeline_run(message_id=message.id)
    # then: every line is a JSON object with time, level and logger
    records = _records(json_lines)
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    # and: the decision's line names the ticket, message and draft
    decided = [r for r in records if r["logger"] == "apps.copilot.services.pipeline"]
    assert decided[-1]["ticket_id"] == ticket.id and decided[-1]["message_id"] == message.id
    assert decided[-1]["draft_id"] == draft.id
    # and: no line carries the customer's words
    output = json_lines.getvalue()
    assert "quokka" not in output and "marmalade" not in output


@pytest.mark.django_db
def test_a_request_gets_an_id_on_its_log_lines_and_in_its_answer(client, json_lines):
    # when: a request that logs (a 404 is logged by django.request)
    response = client.get("/api/v1/nothing-here")
    given = client.get("/api/v1/nothing-here", HTTP_X_REQUEST_ID="proxy-abc-12345")
    bad = client.get("/api/v1/nothing-here", HTTP_X_REQUEST_ID="<script>")
    # then
    request_id = response["X-Request-ID"]
    assert len(request_id) == 32 and given["X-Request-ID"] == "proxy-abc-12345"
    assert bad["X-Request-ID"] != "<script>"
    logged = [r for r in _records(json_lines) if r["logger"] == "django.request"]
    assert [r["request_id"] for r in logged[:2]] == [request_id, "proxy-abc-12345"]


def test_library_extras_with_customer_data_are_not_written(json_lines, rf):
    # given: a library's record carrying a task's data and a request with a query string
    request = rf.get("/widget/api/conversations", {"email": "maria.g@example.com"})
    # when
    logging.getLogger("celery.app.trace").info(
        "Task done", extra={"data": {"body": "my card 4111 was stolen"}, "request": request}
    )
    # then
    record = _records(json_lines)[-1]
    assert record["request"] == "GET /widget/api/conversations"
    assert "data" not in record and "stolen" not in json_lines.getvalue()
