"""The pipeline hook: one task per new customer message, on commit, surviving a broker outage."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from celery.signals import after_task_publish
from django.conf import settings
from django.utils import timezone

from apps.copilot.models import Draft
from apps.copilot.services import pipeline_run
from apps.core.leases import lease
from apps.tickets.models import Message, PipelineStatus
from apps.tickets.services import PIPELINE_LEASE, message_pipeline_sweep
from config.celery import app as celery_app
from tests.conftest import celery_worker, wait_for

DEAD_BROKER_URL = "redis://127.0.0.1:1/0"


@pytest.fixture
def published() -> Iterator[list[dict]]:
    """Every pipeline task published to the broker by this process during the test."""
    seen: list[dict] = []

    def record(sender=None, headers=None, body=None, routing_key=None, **_):  # type: ignore[no-untyped-def]
        if sender == "copilot.pipeline_run":
            seen.append({"kwargs": body[1], "routing_key": routing_key})

    after_task_publish.connect(record, weak=False)
    yield seen
    after_task_publish.disconnect(record)


def _reset_connections() -> None:
    # Forget the app's cached pools (kombu keeps one per broker URL): the next publish picks
    # the pool of whatever broker_url is now.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker_down() -> Iterator[None]:
    """The Celery app publishes to a dead broker until the test restores it (or ends)."""
    original = celery_app.conf.broker_url
    _reset_connections()
    celery_app.conf.broker_url = DEAD_BROKER_URL

    def restore() -> None:
        _reset_connections()
        celery_app.conf.broker_url = original

    yield restore
    restore()


def _create_ticket(client, body: str = "help") -> dict:  # type: ignore[no-untyped-def]
    response = client.post("/api/v1/tickets", {"body": body}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.mark.django_db
def test_each_new_customer_message_publishes_exactly_one_task_after_commit(
    api_key_client, published, django_capture_on_commit_callbacks
):
    # given
    client = api_key_client()
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        ticket = _create_ticket(client)
        reply = client.post(
            f"/api/v1/tickets/{ticket['id']}/messages", {"body": "more"}, format="json"
        ).json()
    # then
    assert len(callbacks) == 2
    assert published == [
        {"kwargs": {"message_id": ticket["message_id"]}, "routing_key": "pipeline"},
        {"kwargs": {"message_id": reply["id"]}, "routing_key": "pipeline"},
    ]
    for message in Message.objects.all():
        assert (message.pipeline_status, message.pipeline_attempts) == ("queued", 1)


@pytest.mark.django_db
def test_agent_message_and_refused_request_publish_nothing(
    api_key_client, published, django_capture_on_commit_callbacks
):
    # given
    client = api_key_client()
    with django_capture_on_commit_callbacks(execute=True):
        ticket = _create_ticket(client)
    published.clear()
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        client.post(
            f"/api/v1/tickets/{ticket['id']}/messages",
            {"body": "answer", "author_kind": "agent"},
            format="json",
        )
        client.post("/api/v1/tickets", {"body": ""}, format="json")
    # then
    assert callbacks == []
    assert published == []


@pytest.mark.django_db
def test_pipeline_run_twice_leaves_one_draft_and_the_message_done(api_key_client):
    # given: no knowledge base, no classifier
    message_id = _create_ticket(api_key_client())["message_id"]
    # when
    first = pipeline_run(message_id=message_id)
    second = pipeline_run(message_id=message_id)
    # then
    message = Message.objects.get(pk=message_id)
    assert first is not None and second is not None
    assert first.pk == second.pk
    assert Draft.objects.filter(message_id=message_id).count() == 1
    assert (first.decision, first.reason) == ("handed_off", "no_answer")
    assert message.pipeline_status == "done"
    assert message.pipeline_started_at is not None


@pytest.mark.django_db
def test_pipeline_run_for_a_missing_message_does_nothing():
    # when / then
    assert pipeline_run(message_id=987654) is None


@pytest.mark.django_db
def test_broker_down_message_is_stored_answered_201_and_swept_once_back(
    api_key_client, broker_down, published, django_capture_on_commit_callbacks
):
    # given: the broker is unreachable
    client = api_key_client()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        ticket = _create_ticket(client, "are you there?")
    # then: stored, answered, left unscheduled with the reason
    message = Message.objects.get(pk=ticket["message_id"])
    assert message.pipeline_status == PipelineStatus.UNSCHEDULED
    assert message.pipeline_attempts == 1
    assert message.pipeline_error.startswith("publish failed at ")
    assert published == []
    # when: the sweep runs while the broker is still down
    assert message_pipeline_sweep(unscheduled_after_seconds=0) == 0
    # when: the broker is back and the sweep runs
    broker_down()
    swept = message_pipeline_sweep(unscheduled_after_seconds=0)
    # then
    message.refresh_from_db()
    assert swept == 1
    assert published == [{"kwargs": {"message_id": message.pk}, "routing_key": "pipeline"}]
    assert (message.pipeline_status, message.pipeline_attempts, message.pipeline_error) == (
        "queued",
        3,
        "",
    )


@pytest.mark.django_db
def test_sweep_leaves_recent_and_running_messages_alone(api_key_client, published):
    # given: one message just stored (unscheduled), one already picked up
    client = api_key_client()
    recent = _create_ticket(client)["message_id"]
    running = _create_ticket(client)["message_id"]
    pipeline_run(message_id=running)
    # when
    swept = message_pipeline_sweep()
    # then
    assert swept == 0
    assert published == []
    assert Message.objects.get(pk=recent).pipeline_status == "unscheduled"


@pytest.mark.django_db
def test_a_run_that_died_in_processing_is_swept_once_then_finished_into_one_draft(
    api_key_client, published
):
    # given: two runs that started and never finished (their worker was killed), one long ago
    client = api_key_client()
    stale = _create_ticket(client, "anyone there?")["message_id"]
    fresh = _create_ticket(client, "hello?")["message_id"]
    long_ago = timezone.now() - timedelta(hours=1)
    Message.objects.filter(pk=stale).update(
        pipeline_status=PipelineStatus.PROCESSING,
        pipeline_started_at=long_ago,
        pipeline_scheduled_at=long_ago,
    )
    Message.objects.filter(pk=fresh).update(
        pipeline_status=PipelineStatus.PROCESSING, pipeline_started_at=timezone.now()
    )
    # when
    first = message_pipeline_sweep(processing_after_seconds=600)
    second = message_pipeline_sweep(processing_after_seconds=600)
    # then: only the stale one, and not again while its new delivery is under way
    assert (first, second) == (1, 0)
    assert published == [{"kwargs": {"message_id": stale}, "routing_key": "pipeline"}]
    # when: the delivery runs
    draft = pipeline_run(message_id=stale)
    # then
    assert draft is not None
    assert Draft.objects.filter(message_id=stale).count() == 1
    assert Message.objects.get(pk=stale).pipeline_status == PipelineStatus.DONE


def _pipeline_queue_empty() -> None:
    """Nothing waiting in the broker's pipeline queue (earlier tests published tasks that no
    worker consumed)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    for suffix in ("", "\x06\x163", "\x06\x166", "\x06\x169"):
        client.delete(f"pipeline{suffix}")


@pytest.mark.django_db
def test_a_run_whose_worker_died_is_swept_after_its_lease_not_after_the_long_backstop(
    api_key_client, published
):
    # given: two runs that started two minutes ago; one's worker is alive (holds its lease),
    # the other's was killed (no lease)
    client = api_key_client()
    alive = _create_ticket(client, "still being drafted")["message_id"]
    died = _create_ticket(client, "worker killed")["message_id"]
    two_minutes_ago = timezone.now() - timedelta(minutes=2)
    Message.objects.filter(pk__in=[alive, died]).update(
        pipeline_status=PipelineStatus.PROCESSING,
        pipeline_started_at=two_minutes_ago,
        pipeline_scheduled_at=two_minutes_ago,
    )
    with lease(PIPELINE_LEASE, alive) as taken:
        assert taken
        # when: the sweep runs with its long backstop (15 min) far away
        swept = message_pipeline_sweep()
        again = message_pipeline_sweep()
    # then: only the dead one is delivered again, once
    assert (swept, again) == (1, 0)
    assert published == [{"kwargs": {"message_id": died}, "routing_key": "pipeline"}]


@pytest.mark.django_db
def test_a_second_delivery_of_a_live_run_leaves_it_to_that_run(api_key_client):
    # given: a run of the message is under way elsewhere (it holds the lease)
    message_id = _create_ticket(api_key_client(), "my card is stuck")["message_id"]
    with lease(PIPELINE_LEASE, message_id):
        # when: the broker delivers the same message again
        second = pipeline_run(message_id=message_id)
    # then: it does nothing; once the lease is given back, a delivery drafts it
    assert second is None
    assert not Draft.objects.filter(message_id=message_id).exists()
    assert pipeline_run(message_id=message_id) is not None


@pytest.mark.django_db
def test_a_task_the_broker_lost_is_published_again_once_the_queue_is_empty(
    api_key_client, published
):
    # given: a message queued two minutes ago whose task the broker no longer has (Redis
    # restarted without it), and another queued just now
    client = api_key_client()
    lost = _create_ticket(client, "lost in a restart")["message_id"]
    recent = _create_ticket(client, "just queued")["message_id"]
    two_minutes_ago = timezone.now() - timedelta(minutes=2)
    Message.objects.filter(pk=lost).update(
        pipeline_status=PipelineStatus.QUEUED, pipeline_scheduled_at=two_minutes_ago
    )
    Message.objects.filter(pk=recent).update(
        pipeline_status=PipelineStatus.QUEUED, pipeline_scheduled_at=timezone.now()
    )
    # when: the pipeline queue still holds work, the sweep leaves it (it may be waiting there)
    _pipeline_queue_empty()
    celery_app.send_task("copilot.pipeline_run", kwargs={"message_id": 0}, queue="pipeline")
    published.clear()
    assert message_pipeline_sweep() == 0
    # when: the queue is empty
    _pipeline_queue_empty()
    swept = message_pipeline_sweep()
    # then: only the old one is published again
    assert swept == 1
    assert published == [{"kwargs": {"message_id": lost}, "routing_key": "pipeline"}]


@pytest.mark.django_db
def test_a_run_that_died_on_every_delivery_goes_to_a_person_instead_of_forever(
    api_key_client, published, settings
):
    # given: a message whose run died again after its last allowed delivery
    settings.PIPELINE_MAX_DELIVERIES = 3
    client = api_key_client()
    doomed = _create_ticket(client, "this one kills the worker")["message_id"]
    long_ago = timezone.now() - timedelta(hours=1)
    Message.objects.filter(pk=doomed).update(
        pipeline_status=PipelineStatus.PROCESSING,
        pipeline_started_at=long_ago,
        pipeline_scheduled_at=long_ago,
        pipeline_attempts=3,
    )
    # when
    swept = message_pipeline_sweep(processing_after_seconds=600)
    # then: not published again; failed with the reason, and the ticket is with a person
    message = Message.objects.get(pk=doomed)
    assert swept == 0
    assert published == []
    assert message.pipeline_status == PipelineStatus.FAILED
    assert "never finished after 3 deliveries" in message.pipeline_error
    assert message.ticket.status == "handed_off"


@pytest.mark.django_db
def test_widget_and_email_messages_each_publish_one_task(
    api_key_client, published, django_capture_on_commit_callbacks
):
    # given
    from apps.accounts.services import widget_key_create

    origin = "https://shop.example.com"
    widget_key = widget_key_create(site_name="Shop", allowed_origins=[origin])
    raw = b"From: a@example.com\r\nMessage-ID: <one@x>\r\n\r\nhello\r\n"
    client = api_key_client()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(
            f"/widget/api/{widget_key.public_key}/conversations",
            {"body": "hi"},
            format="json",
            HTTP_ORIGIN=origin,
        ).json()
        emailed = client.generic(
            "POST", "/api/v1/inbound/email", raw, content_type="message/rfc822"
        ).json()
        duplicate = client.generic(
            "POST", "/api/v1/inbound/email", raw, content_type="message/rfc822"
        ).json()
    # then
    assert duplicate["is_duplicate"] is True
    assert [entry["kwargs"]["message_id"] for entry in published] == [
        started["message"]["id"],
        emailed["message_id"],
    ]


# The two tests with a real worker come last and share it (a worker start costs ~20 s):
# while it runs it would consume the pipeline tasks of any test after them in this module.
@pytest.fixture(scope="module")
def module_worker(django_db_setup, django_db_blocker) -> Iterator[str]:
    with celery_worker() as node:
        yield node


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_real_worker_picks_up_a_message_created_through_the_api(module_worker, api_key_client):
    # given
    client = api_key_client()
    # when
    message_id = _create_ticket(client, "worker, please")["message_id"]
    # then
    message = wait_for(
        lambda: Message.objects.filter(pk=message_id, pipeline_status=PipelineStatus.DONE).first()
    )
    assert message.pipeline_attempts == 1
    assert message.pipeline_started_at is not None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_real_worker_gets_the_message_after_the_broker_comes_back(
    module_worker, api_key_client, broker_down
):
    # given: a message arrives while the broker is down
    client = api_key_client()
    message_id = _create_ticket(client, "during the outage")["message_id"]
    assert Message.objects.get(pk=message_id).pipeline_status == "unscheduled"
    # when: the broker is back and the sweep runs
    broker_down()
    assert message_pipeline_sweep(unscheduled_after_seconds=0) == 1
    # then
    wait_for(
        lambda: Message.objects.filter(pk=message_id, pipeline_status=PipelineStatus.DONE).exists()
    )
