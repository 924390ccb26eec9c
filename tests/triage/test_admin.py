import pytest
from django.urls import reverse

from apps.accounts.models import User
from apps.triage.models import ClassifierVersion, TrainingSource, TrainingStatus
from apps.triage.services import training_example_record_correction

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):  # type: ignore[no-untyped-def]
    user = User.objects.create_superuser("boss", "boss@example.com", "pw-long-enough-123")
    client.force_login(user)
    return client


@pytest.mark.slow
def test_the_version_list_shows_the_corrections_waiting(admin_client, active_classifier):
    # given
    training_example_record_correction(text="my card never came", intent_name="card_lost")
    # when
    response = admin_client.get(reverse("admin:triage_classifierversion_changelist"))
    # then
    assert response.status_code == 200
    assert "Agent corrections waiting since the active version: <strong>1</strong>" in (
        response.content.decode()
    )


@pytest.mark.slow
def test_activating_from_the_admin_is_one_action(admin_client, make_ready_version):
    # given
    first = make_ready_version(activate=True)
    second = make_ready_version()
    # when
    response = admin_client.post(
        reverse("admin:triage_classifierversion_changelist"),
        {"action": "activate_version", "_selected_action": [second.id]},
    )
    # then
    assert response.status_code == 302
    assert ClassifierVersion.objects.get(is_active=True).id == second.id != first.id


def test_the_train_button_queues_a_pending_version(
    admin_client, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(reverse("admin:triage_classifierversion_train"), {})
    # then
    assert response.status_code == 302
    version = ClassifierVersion.objects.get()
    assert (version.status, version.training_source) == (
        TrainingStatus.PENDING,
        TrainingSource.DATABASE,
    )
    assert len(callbacks) == 1
