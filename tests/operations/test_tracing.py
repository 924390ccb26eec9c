"""Tracing: one trace from the request through each pipeline stage to the model call, its id
on the draft and the log lines; a real web process exports its spans by OTLP."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from apps.copilot.services import pipeline_run
from apps.core import tracing
from tests.conftest import wait_for, web_process
from tests.copilot.conftest import customer_ticket


@pytest.fixture
def spans(monkeypatch) -> InMemorySpanExporter:  # type: ignore[no-untyped-def]
    """Tracing on for this test only, into memory (a provider of its own, not the global)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setitem(tracing._state, "tracer", provider.get_tracer("test"))
    return exporter


@pytest.mark.django_db
def test_one_trace_covers_every_stage_and_the_model_call_and_is_on_the_draft(
    copilot_ready, spans, caplog
):
    # given
    _, message = customer_ticket("How do I reset my password? The link never arrives.")
    # when: the pipeline runs inside a request's span
    with tracing.span("request") as parent, caplog.at_level(logging.INFO):
        draft = pipeline_run(message_id=message.id)
    # then: every stage and the model call are children in the request's trace
    trace_id = format(parent.get_span_context().trace_id, "032x")
    finished = spans.get_finished_spans()
    names = {span.name for span in finished}
    assert {"pipeline.guard", "pipeline.triage", "pipeline.retrieve", "pipeline.draft"} <= names
    assert "llm.completion" in names
    assert {format(span.context.trace_id, "032x") for span in finished} == {trace_id}
    model_call = next(span for span in finished if span.name == "llm.completion")
    assert model_call.attributes["llm.model"] == draft.model
    assert model_call.attributes["llm.purpose"] == "draft"
    assert model_call.attributes["llm.call_id"] in draft.llm_call_ids
    # and: the trace id is on the draft and on the decision's log line
    assert draft.trace_id == trace_id
    decided = [r for r in caplog.records if r.name == "apps.copilot.services.pipeline"]
    assert decided and decided[-1].trace_id == trace_id


@pytest.mark.django_db
def test_without_tracing_nothing_is_recorded(copilot_ready):
    _, message = customer_ticket("Where is my refund?")
    assert pipeline_run(message_id=message.id).trace_id == ""


class _Collector:
    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []

    def spans(self) -> list[tuple[str, str, str]]:
        """(service name, span name, trace id) of every span received."""
        found = []
        for request in self.requests:
            for resource in request.resource_spans:
                service = next(
                    a.value.string_value
                    for a in resource.resource.attributes
                    if a.key == "service.name"
                )
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        found.append((service, span.name, span.trace_id.hex()))
        return found


@pytest.fixture
def collector() -> Iterator[tuple[_Collector, int]]:
    """An OTLP/HTTP trace receiver on loopback."""
    received = _Collector()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            received.requests.append(request)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    yield received, server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_web_process_with_an_otlp_endpoint_exports_its_requests_spans(collector, tmp_path):
    # given: a real web process (uvicorn) with tracing on, and an API key
    received, port = collector
    import urllib.request

    from apps.accounts.services import api_key_create

    _, key = api_key_create(name="tracing", scopes=["read"])
    environment = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "WEB_WARM": "false",
    }
    with web_process(tmp_path / "web.log", **environment) as (_, web_port):
        # when: a request
        request = urllib.request.Request(
            f"http://127.0.0.1:{web_port}/api/v1/ping", headers={"Authorization": f"Bearer {key}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (http)
            request_id = response.headers["X-Request-ID"]
            assert response.status == 200
        # then: its server span reaches the collector, from the web service
        found = wait_for(
            lambda: [s for s in received.spans() if s[0] == "deskpilot-web" and "ping" in s[1]],
            timeout=20,
        )
    assert len(found[0][2]) == 32 and found[0][2] != "0" * 32
    assert len(request_id) == 32
