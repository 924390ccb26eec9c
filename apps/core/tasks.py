import socket

from celery import shared_task

from apps.core.services import heartbeat_record


@shared_task(name="core.heartbeat_record")
def heartbeat_record_task(name: str = "worker") -> int:
    """Record that a worker ran a task just now (scheduled by beat every 30 s)."""
    return heartbeat_record(name=name, hostname=socket.gethostname()).pk
