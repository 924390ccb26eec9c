"""What metrics and tracing cost the pipeline: `pipeline_run` wall time with both off, with
metrics on (the shipped default), and with metrics and tracing on, in one run.

    .venv/bin/python benchmarks/observability_overhead.py [--runs 60]

The demo's knowledge base and classifier (as benchmarks/copilot_pipeline.py --dataset
fernhill), the reply cache off, every alias on a fake OpenAI server in its own process that
answers at once (so the wall time is Deskpilot's own), the demo's answerable gold questions
as new API tickets. The three modes alternate ten messages at a time, so the machine's drift
affects all alike. Metrics go to a real Redis (the bench one); tracing exports by OTLP/HTTP
in batches to a collector in another process that accepts every span. Off means recording
replaced by nothing (`metrics_record`, `metrics_buffer`) and no tracer.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

COLLECTOR = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60, help="messages per mode")
    options = parser.parse_args()
    from copilot_pipeline import GOLD, INSTANT_REPLY, PRICE_MODEL, fernhill_setup, services_start

    services_start("observability")
    from django.conf import settings
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from percentiles import percentile

    from apps.copilot.calibration import gold_read
    from apps.copilot.models import CopilotPolicy
    from apps.copilot.services import pipeline_run
    from apps.core import metrics, tracing
    from apps.llm.circuit import circuit_reset
    from apps.llm.deployments import Deployment
    from apps.llm.router import router_reset
    from apps.tickets.models import Channel
    from apps.tickets.services import Actor, customer_resolve, ticket_create
    from tests.llm.fake_openai import Reply, ServerProcess

    fernhill_setup()
    CopilotPolicy.objects.update_or_create(singleton=True, defaults={"cache_enabled": False})
    questions = [q for q in gold_read(path=GOLD) if q.answerable]
    server = ServerProcess()
    answer = json.dumps({"reply": INSTANT_REPLY, "citations": ["P1"], "answerable": True})
    server.reset(default=Reply.ok(answer, chunk_chars=4))
    os.environ["FAKE_OPENAI_KEY"] = "sk-fake"
    deployment = Deployment(
        model=PRICE_MODEL, api_base=server.base_url, api_key_env="FAKE_OPENAI_KEY"
    )
    settings.LLM_DEPLOYMENTS = {alias: (deployment,) for alias in settings.LLM_DEPLOYMENTS}
    router_reset()
    circuit_reset(list(settings.LLM_DEPLOYMENTS))
    collector = subprocess.Popen(
        [sys.executable, "-c", COLLECTOR], stdout=subprocess.PIPE, text=True
    )
    port = int(collector.stdout.readline())  # type: ignore[union-attr]
    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces"))
    )
    tracer = provider.get_tracer("bench")
    recorded = (metrics.metrics_record, metrics.metrics_buffer)

    def mode(name: str) -> None:
        on = name != "off"
        metrics.metrics_record = recorded[0] if on else (lambda batch: None)
        metrics.metrics_buffer = recorded[1] if on else (lambda batch: None)
        tracing._state["tracer"] = tracer if name == "metrics+tracing" else None

    customer = customer_resolve(email="bench@example.com", name="Bench")
    walls: dict[str, list[float]] = {"off": [], "metrics": [], "metrics+tracing": []}
    chosen = (questions * (3 * options.runs // len(questions) + 1))[: 3 * options.runs]
    for block in range(0, len(chosen), 10):
        name = list(walls)[block // 10 % 3]
        mode(name)
        for question in chosen[block : block + 10]:
            _, message = ticket_create(
                customer=customer, body=question.question, channel=Channel.API,
                actor=Actor.for_customer(customer),
            )  # fmt: skip
            started = time.perf_counter()
            with tracing.span("bench.message"):
                pipeline_run(message_id=message.id)
            walls[name].append((time.perf_counter() - started) * 1000)
    mode("metrics")
    provider.force_flush()
    collector.terminate()
    server.stop()
    base = walls["off"]
    print(f"\npipeline_run wall time, instant fake model, {options.runs} messages per mode:")
    for name, values in walls.items():
        print(
            f"  {name:16s} p50 {statistics.median(values):7.2f} ms  "
            f"p95 {percentile(values, 0.95):7.2f} ms  p99 {percentile(values, 0.99):7.2f} ms  "
            f"(p95 x{percentile(values, 0.95) / percentile(base, 0.95):.3f} of off)"
        )


if __name__ == "__main__":
    main()
