import pytest

from apps.core.models import ServiceHeartbeat
from apps.core.tasks import heartbeat_record_task
from tests.conftest import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_real_worker_picks_task_from_broker_and_writes_to_database(celery_worker_process):
    # given: no heartbeat row, a worker process listening on the real Redis broker
    assert not ServiceHeartbeat.objects.filter(name="from-test").exists()
    # when: the task is sent through the broker, not run in this process
    heartbeat_record_task.apply_async(kwargs={"name": "from-test"}, queue="default")
    # then: the worker process wrote the row into the test database
    heartbeat = wait_for(lambda: ServiceHeartbeat.objects.filter(name="from-test").first())
    assert heartbeat.hostname != ""


def test_readyz_is_ready_when_a_worker_answers(celery_worker_process, client):
    # when
    response = client.get("/readyz")
    # then
    body = response.json()
    assert response.status_code == 200, body
    assert body["down"] == []
    assert body["components"]["celery_worker"]["detail"] == f"ok ({celery_worker_process} answered)"
