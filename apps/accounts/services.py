import hashlib
import hmac
import secrets

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import ApiKey, ApiKeyScope, Role, User
from apps.core.exceptions import ValidationError


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
