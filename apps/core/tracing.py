"""Tracing with OpenTelemetry, on when OTEL_EXPORTER_OTLP_ENDPOINT is set (off otherwise:
no provider, no instrumentation, `span()` does nothing).

One trace follows a customer message: the web request that stored it (Django
instrumentation), the Celery publish and the task that ran the pipeline (Celery
instrumentation carries the context in the task's headers), each pipeline stage, and the
model call (spans of ours, with alias, model, tokens and cost). Spans leave by OTLP/HTTP in
batches, from a background thread: a collector that is down costs dropped spans, never a
failed request. The trace id is on the draft and on every log line (apps.core.logcontext).

The standard OTEL_* variables configure the exporter (endpoint, headers, timeout);
OTEL_SERVICE_NAME names the service (process kind appended: deskpilot-web, deskpilot-worker).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger(__name__)

_state: dict[str, Any] = {"tracer": None}


def tracing_wanted() -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def tracing_setup(*, process: str, django: bool = False) -> bool:
    """Install the provider, the OTLP exporter and the Celery (and, with `django`, Django)
    instrumentation, once per process; False when tracing is off."""
    if _state["tracer"] is not None or not tracing_wanted():
        return _state["tracer"] is not None
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    service = os.environ.get("OTEL_SERVICE_NAME", "deskpilot")
    provider = TracerProvider(resource=Resource.create({"service.name": f"{service}-{process}"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    CeleryInstrumentor().instrument()
    if django:
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        DjangoInstrumentor().instrument()
    _state["tracer"] = trace.get_tracer("deskpilot")
    logger.info("tracing on: spans to %s", os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"])
    return True


def tracing_flush(timeout_millis: int = 5000) -> None:
    """Send the spans still batched (tests; a process about to exit)."""
    if _state["tracer"] is None:
        return
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    flush = getattr(provider, "force_flush", None)
    if flush is not None:
        flush(timeout_millis)


@contextlib.contextmanager
def span(name: str, **attributes: str | int | float | bool) -> Iterator[Any]:
    """A child span of the current one while tracing is on; nothing otherwise."""
    tracer = _state["tracer"]
    if tracer is None:
        yield None
        return
    with tracer.start_as_current_span(name, attributes=attributes) as current:
        yield current


def trace_id_current() -> str:
    """The current trace id in hex, "" when tracing is off or nothing is being traced."""
    if _state["tracer"] is None:
        return ""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""
