"""`Idempotency-Key` for POSTs: a retried request gets the first answer and creates nothing.

The request's work and the stored answer commit in one transaction; a unique constraint
(api key, idempotency key) settles concurrent retries: the loser rolls back its work and
answers with the winner's stored response.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from django.db import transaction
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.models import ApiKey, IdempotencyRecord
from apps.accounts.services import (
    IdempotencyReplay,
    idempotency_key_clean,
    idempotency_record_find,
    idempotency_record_save,
)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


def request_fingerprint(request: Request) -> str:
    data = request.data
    if isinstance(data, bytes):
        payload = data
    else:
        payload = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()
    digest = hashlib.sha256()
    for part in ((request.method or "").encode(), request.path.encode(), payload):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _replay(record: IdempotencyRecord) -> Response:
    response = Response(record.response_body, status=record.response_status)
    response[REPLAYED_HEADER] = "true"
    return response


def idempotent(request: Request, handler: Callable[[], Response]) -> Response:
    """Run `handler` in a transaction; with an Idempotency-Key, at most once per key.

    Only successful (2xx) answers are stored: a refused request changed nothing, so retrying
    it with the same key runs it again.
    """
    raw_key = request.headers.get(HEADER)
    if raw_key is None:
        with transaction.atomic():
            return handler()
    key = idempotency_key_clean(raw_key)
    fingerprint = request_fingerprint(request)
    api_key = request.auth
    assert isinstance(api_key, ApiKey)
    try:
        with transaction.atomic():
            record = idempotency_record_find(api_key=api_key, key=key, fingerprint=fingerprint)
            if record is not None:
                return _replay(record)
            response = handler()
            if 200 <= response.status_code < 300:
                idempotency_record_save(
                    api_key=api_key,
                    key=key,
                    fingerprint=fingerprint,
                    status=response.status_code,
                    body=json.loads(json.dumps(response.data, default=str)),
                )
            return response
    except IdempotencyReplay as replay:
        return _replay(replay.record)
