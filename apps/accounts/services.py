import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import (
    ApiKey,
    ApiKeyScope,
    IdempotencyRecord,
    Role,
    User,
    WidgetKey,
    origin_normalize,
    widget_identity_secret_generate,
)
from apps.core.exceptions import ConflictError, ValidationError
from apps.core.text import mentions_any


@transaction.atomic
def user_create(*, username: str, password: str, role: str = Role.AGENT, email: str = "") -> User:
    """Create a user with a role. Admins get Django admin access; agents the inbox only."""
    if role not in Role.values:
        raise ValidationError(f"unknown role {role!r}; use one of {', '.join(Role.values)}")
    if User.objects.filter(username=username).exists():
        raise ValidationError(f"a user named {username!r} already exists", field="username")
    is_admin = role == Role.ADMIN
    return User.objects.create_user(
        username=username,
        password=password,
        email=email,
        role=role,
        is_staff=is_admin,
        is_superuser=is_admin,
    )


API_KEY_PREFIX_BYTES = 6
API_KEY_SECRET_BYTES = 24


def _api_key_hash(key: str) -> str:
    # Keys are 190+ random bits: a fast hash is enough, unlike passwords.
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_create(
    *, name: str, scopes: list[str], created_by: User | None = None
) -> tuple[ApiKey, str]:
    """Create an API key; return it with the plain key, which is never stored or shown again."""
    name = name.strip()
    if not name:
        raise ValidationError("an API key needs a name", field="name")
    unknown = sorted(set(scopes) - set(ApiKeyScope.values))
    if unknown or not scopes:
        raise ValidationError(
            f"scopes must be a non-empty subset of {ApiKeyScope.values}; got {scopes}",
            field="scopes",
        )
    prefix = secrets.token_hex(API_KEY_PREFIX_BYTES)
    key = f"dp_{prefix}_{secrets.token_urlsafe(API_KEY_SECRET_BYTES)}"
    api_key = ApiKey.objects.create(
        name=name,
        prefix=prefix,
        key_hash=_api_key_hash(key),
        scopes=sorted(set(scopes)),
        created_by=created_by,
    )
    return api_key, key


def api_key_authenticate(*, key: str) -> ApiKey | None:
    """The active ApiKey for a presented key, or None. Records the time of use (coarsely)."""
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != "dp":
        return None
    api_key = ApiKey.objects.filter(prefix=parts[1], revoked_at__isnull=True).first()
    if api_key is None or not hmac.compare_digest(api_key.key_hash, _api_key_hash(key)):
        return None
    now = timezone.now()
    # One write a minute at most: a busy key must not turn every read into a write.
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke a key; idempotent (a revoked key keeps its first revocation time)."""
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key.refresh_from_db()
    return api_key


# --- idempotency keys ------------------------------------------------------------------------


class IdempotencyKeyReusedError(ConflictError):
    """The same Idempotency-Key came with a different request."""

    status_code = 422
    code = "idempotency_key_reused"


IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")


def idempotency_key_clean(key: str) -> str:
    if not IDEMPOTENCY_KEY_PATTERN.match(key):
        raise ValidationError(
            "the Idempotency-Key header must be 1 to 255 visible ASCII characters",
            field="Idempotency-Key",
        )
    return key


def idempotency_record_find(
    *, api_key: ApiKey, key: str, fingerprint: str
) -> IdempotencyRecord | None:
    """The stored answer for a retried request, or None when this key is new (or expired).

    Call inside the request's transaction, before doing anything. Raises
    IdempotencyKeyReusedError when the key was used for a different request.
    """
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    record = IdempotencyRecord.objects.filter(api_key=api_key, key=key).first()
    if record is not None and record.created_at < cutoff:
        record.delete()  # expired: the key is new again (the purge task removes the rest)
        record = None
    if record is not None and record.fingerprint != fingerprint:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was already used with a different request; "
            "use a new key for a new request",
            field="Idempotency-Key",
        )
    return record


def idempotency_record_save(
    *, api_key: ApiKey, key: str, fingerprint: str, status: int, body: Any
) -> IdempotencyRecord:
    """Store the answer to replay, in the request's own transaction.

    When a concurrent request with the same key committed first, the unique constraint
    refuses this one: the caller's transaction must roll back, and the winner's answer is
    returned (the caller replays it). Raises IdempotencyKeyReusedError if the winner's
    request was different.
    """
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(
                api_key=api_key,
                key=key,
                fingerprint=fingerprint,
                response_status=status,
                response_body=body,
            )
    except IntegrityError:
        winner = idempotency_record_find(api_key=api_key, key=key, fingerprint=fingerprint)
        if winner is None:
            raise
        raise IdempotencyReplay(winner) from None


class IdempotencyReplay(Exception):
    """Control flow: another request with this key won; roll back and answer with its record."""

    def __init__(self, record: IdempotencyRecord) -> None:
        super().__init__(record.key)
        self.record = record


def idempotency_records_purge() -> int:
    """Delete records older than IDEMPOTENCY_KEY_TTL_HOURS; returns how many."""
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


# --- widget keys ---------------------------------------------------------------------------

ORIGIN_PATTERN = re.compile(r"^https?://[a-z0-9.-]+(:\d{1,5})?$")


def widget_origins_clean(origins: list[str]) -> list[str]:
    """Normalised origins; refuses anything that is not scheme://host[:port]."""
    cleaned: list[str] = []
    for origin in origins:
        normalised = origin_normalize(origin)
        if not ORIGIN_PATTERN.match(normalised):
            raise ValidationError(
                f"{origin!r} is not an origin like https://www.example.com (no path, no '*')",
                field="allowed_origins",
            )
        if normalised not in cleaned:
            cleaned.append(normalised)
    return cleaned


def widget_key_origins_add(*, widget_key: WidgetKey, origins: list[str]) -> list[str]:
    """Allow `origins` too (normalised); returns those that were new. Idempotent."""
    wanted = widget_origins_clean(origins)
    with transaction.atomic():
        locked = WidgetKey.objects.select_for_update().get(pk=widget_key.pk)
        added = [origin for origin in wanted if origin not in locked.allowed_origins]
        if added:
            WidgetKey.objects.filter(pk=locked.pk).update(
                allowed_origins=[*locked.allowed_origins, *added]
            )
    widget_key.refresh_from_db(fields=["allowed_origins"])
    return added


def widget_key_create(*, site_name: str, allowed_origins: list[str]) -> WidgetKey:
    site_name = site_name.strip()
    if not site_name:
        raise ValidationError("a widget key needs a site name", field="site_name")
    return WidgetKey.objects.create(
        site_name=site_name, allowed_origins=widget_origins_clean(allowed_origins)
    )


# --- widget visitor identity (docs/widget-identity.md) -------------------------------------


def widget_identity_hash(*, secret: str, user_id: str, email: str, name: str) -> str:
    """The `user_hash` a website's server puts in its page for a signed-in user: lowercase hex
    HMAC-SHA256 with the widget key's identity secret over "{user_id}\n{email}\n{name}",
    the exact strings the page passes to the widget (the caller refuses line breaks in them,
    so that no two identities share a message)."""
    message = f"{user_id}\n{email}\n{name}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def widget_identity_signature_matches(
    *, widget_key: WidgetKey, user_id: str, email: str, name: str, user_hash: str
) -> bool:
    """Whether `user_hash` is this key's signature of the identity (compared in constant time)."""
    expected = widget_identity_hash(
        secret=widget_key.identity_secret, user_id=user_id, email=email, name=name
    )
    return hmac.compare_digest(expected, user_hash.lower())


def widget_key_identity_secret_rotate(*, widget_key: WidgetKey) -> str:
    """Give the key a new identity secret and return it. Every signature made with the old one
    stops matching at once: the site's server must sign with the new one (conversations
    already started keep their visitor tokens, which do not depend on it)."""
    secret = widget_identity_secret_generate()
    WidgetKey.objects.filter(pk=widget_key.pk).update(identity_secret=secret)
    widget_key.identity_secret = secret
    return secret


def idempotency_records_erase(*, needles: Sequence[str]) -> int:
    """Delete the stored answers (kept for retries, IDEMPOTENCY_KEY_TTL_HOURS) that quote
    any of `needles`: a customer's address, name or words echoed in a ticket's JSON."""
    doomed = [
        record.pk
        for record in IdempotencyRecord.objects.only("pk", "response_body").iterator()
        if mentions_any(record.response_body, needles)
    ]
    deleted, _ = IdempotencyRecord.objects.filter(pk__in=doomed).delete()
    return deleted
