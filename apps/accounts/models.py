import secrets

from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    AGENT = "agent", "Agent"
    ADMIN = "admin", "Admin"


class User(AbstractUser):
    """A person who works in Deskpilot: an agent in the inbox or an admin."""

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)

    @property
    def is_deskpilot_admin(self) -> bool:
        return self.role == Role.ADMIN or self.is_superuser


class ApiKeyScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write"


class ApiKey(models.Model):
    """A key another system uses for the REST API. Only a hash of the secret is kept.

    The presented key is `dp_<prefix>_<secret>`; the prefix finds the row, the hash proves it.
    """

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list, help_text='Any of "read", "write".')
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} (dp_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class IdempotencyRecord(models.Model):
    """The first answer to a POST made with an `Idempotency-Key`, replayed for retries.

    Written in the same transaction as the request's own changes, so a stored record always
    means the request's effects were committed; the unique constraint makes two concurrent
    requests with one key resolve to one execution.
    """

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # sha256 of method, path and canonical request body.
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.api_key_id})"


def widget_public_key_generate() -> str:
    return "wk_" + secrets.token_urlsafe(18)


def widget_identity_secret_generate() -> str:
    return secrets.token_urlsafe(32)


class WidgetKey(models.Model):
    """The public key a website embeds to run the chat widget; public, so not a secret.

    It identifies the site; the browser's Origin header must be one of `allowed_origins`.
    `identity_secret` is the one secret: shared with the site's server only, which signs its
    signed-in user's id, email and name with it (docs/widget-identity.md). It is kept in
    clear because checking an HMAC needs it, like a session signing key.
    """

    public_key = models.CharField(
        max_length=64, unique=True, default=widget_public_key_generate, editable=False
    )
    site_name = models.CharField(max_length=100)
    allowed_origins = models.JSONField(
        default=list, help_text="Exact origins allowed to use the widget, e.g. https://example.com"
    )
    is_active = models.BooleanField(default=True)
    identity_secret = models.CharField(
        max_length=64,
        default=widget_identity_secret_generate,
        editable=False,
        help_text="The site's server signs its signed-in visitors with it; never put it in a page.",
    )
    identity_required = models.BooleanField(
        default=False,
        help_text="Refuse conversations from visitors the site has not signed "
        "(data-user-id and data-user-hash).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(identity_secret=""), name="widgetkey_identity_secret_set"
            )
        ]

    def __str__(self) -> str:
        return f"{self.site_name} ({self.public_key})"

    def allows_origin(self, origin: str) -> bool:
        return bool(origin) and origin_normalize(origin) in self.allowed_origins


def origin_normalize(origin: str) -> str:
    """scheme://host[:port], lower-cased, default ports dropped, as browsers send Origin."""
    origin = origin.strip().rstrip("/").lower()
    for scheme, port in (("https://", ":443"), ("http://", ":80")):
        if origin.startswith(scheme) and origin.endswith(port):
            origin = origin.removesuffix(port)
    return origin
