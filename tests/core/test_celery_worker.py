import pytest

from apps.core.models import ServiceHeartbeat
from apps.core.tasks import heartbeat_record_task
from tests.conftest import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_picks_a_task_from_the_broker_and_readyz_sees_it(
    celery_worker_process, client
):
    # (One test for both: each worker start costs ~20 s of the suite.)
    # given: no heartbeat row, a worker process listening on the real Redis broker
    assert not ServiceHeartbeat.objects.filter(name="from-test").exists()
    # when: the task is sent through the broker, not run in this process
    heartbeat_record_task.apply_async(kwargs={"name": "from-test"}, queue="default")
    # then: the worker process wrote the row into the test database
    heartbeat = wait_for(lambda: ServiceHeartbeat.objects.filter(name="from-test").first())
    assert heartbeat.hostname != ""
    # and /readyz is ready, naming the worker that answered
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["down"] == []
    assert body["components"]["celery_worker"]["detail"] == f"ok ({celery_worker_process} answered)"
