from django.utils import timezone

from apps.core.models import ServiceHeartbeat


def heartbeat_record(*, name: str, hostname: str) -> ServiceHeartbeat:
    """Upsert the heartbeat row for `name`. Idempotent; one row per name."""
    heartbeat, _ = ServiceHeartbeat.objects.update_or_create(
        name=name, defaults={"hostname": hostname, "last_seen_at": timezone.now()}
    )
    return heartbeat
