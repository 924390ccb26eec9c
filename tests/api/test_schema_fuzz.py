"""Schemathesis against the live OpenAPI schema, in process through the WSGI app.

Every generated request (valid and invalid) to the ticket and inbound-email endpoints must
get an answer the schema documents: no 5xx, documented status codes, bodies and content
types that match.
"""

from collections.abc import Iterator

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import checks

from apps.accounts.services import api_key_create


@schemathesis.serializer("message/rfc822")
def rfc822_serializer(context, value):  # type: ignore[no-untyped-def]
    # The schema says "binary": generated values are bytes, or text to send as UTF-8.
    return value if isinstance(value, bytes) else str(value).encode()


# Loaded at collection (no database needed): the schema as /api/schema/ serves it.
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture
def authorization(db) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    # As Django's test client does: keep the test's database connection (and its rolled-back
    # transaction) open across in-process WSGI requests.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    _, key = api_key_create(name="fuzz", scopes=["read", "write"])
    yield {"Authorization": f"Bearer {key}"}
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.slow
@schema.include(path_regex=r"^/api/v1/(tickets|inbound)").parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_ticket_endpoints_answer_as_documented(case, authorization):
    # JSON writes are fully described by the schema, so schema-valid input must be accepted.
    # (A raw email, an opaque cursor or a reused Idempotency-Key can be schema-valid and
    # still refused.)
    extra = (
        [checks.positive_data_acceptance]
        if case.method == "POST"
        and case.path.startswith("/api/v1/tickets")
        and "Idempotency-Key" not in (case.headers or {})
        else []
    )
    # when / then: the documented answer, whatever the input
    case.call_and_validate(headers=authorization, checks=[*CHECKS, *extra])
