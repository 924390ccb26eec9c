import pytest

from apps.triage.models import ClassifierVersion

# The triage tests' fixtures: a ready classifier trained once per process on synthetic data.
from tests.triage.conftest import (  # noqa: F401
    active_classifier,
    make_ready_version,
    synthetic_artifact,
)

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

URL = "/api/v1/triage/classify"


@pytest.mark.usefixtures("active_classifier")
def test_classify_returns_intent_confidence_alternatives_per_text(api_key_client):
    # given
    client = api_key_client(scopes=("read",))
    # when
    response = client.post(
        URL,
        {"texts": ["someone stole my credit card", "What is the capital of Australia?"]},
        format="json",
    )
    # then
    assert response.status_code == 200, response.json()
    first, second = response.json()["results"]
    assert first["intent"] == "card_lost"
    assert first["out_of_scope"] is False
    assert first["classifier_version_id"] == ClassifierVersion.objects.get(is_active=True).id
    assert first["alternatives"][0] == {"intent": "card_lost", "probability": first["confidence"]}
    assert len(first["alternatives"]) == 3
    assert first["language"] == "en"
    assert (second["intent"], second["out_of_scope"]) == (None, True)


@pytest.mark.parametrize("text", ["", "🙂🙂", " "])
@pytest.mark.usefixtures("active_classifier")
def test_empty_or_emoji_only_text_gets_a_result_not_an_error(api_key_client, text):
    # when
    response = api_key_client().post(URL, {"texts": [text]}, format="json")
    # then
    assert response.status_code == 200
    result = response.json()["results"][0]
    assert (result["intent"], result["out_of_scope"], result["reason"]) == (
        None,
        True,
        "no words to classify",
    )


def test_without_an_active_classifier_texts_are_unclassified(api_key_client):
    # when
    response = api_key_client().post(URL, {"texts": ["where is my parcel"]}, format="json")
    # then
    assert response.status_code == 200
    result = response.json()["results"][0]
    assert (result["intent"], result["reason"], result["classifier_version_id"]) == (
        None,
        "no active classifier",
        None,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"texts": []}, "texts"),
        ({"texts": ["hello"] * 257}, "texts"),
        ({"texts": ["x" * 20001]}, "texts.0"),
        ({"texts": "hello"}, "texts"),
        ({"texts": [None]}, "texts.0"),
        ({"texts": [{"a": 1}]}, "texts.0"),
        ({}, "texts"),
    ],
)
def test_bad_bodies_get_a_clear_400(api_key_client, body, field):
    # when
    response = api_key_client().post(URL, body, format="json")
    # then
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"]


@pytest.mark.usefixtures("active_classifier")
def test_long_texts_in_a_batch_are_answered(api_key_client):
    # given: 16 texts of 20 000 characters
    texts = [("where is my parcel, it is late. " * 700)[:20000]] * 16
    # when
    response = api_key_client().post(URL, {"texts": texts}, format="json")
    # then
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 16
    assert {result["alternatives"][0]["intent"] for result in results} == {"delivery_status"}


@pytest.mark.usefixtures("active_classifier")
def test_a_full_batch_at_the_documented_maximum_is_answered(api_key_client):
    # given: 256 texts of 20 000 characters (5 MB, over Django's form-data limit)
    texts = ["x" * 20000] * 256
    # when
    response = api_key_client().post(URL, {"texts": texts}, format="json")
    # then
    assert response.status_code == 200
    assert len(response.json()["results"]) == 256


def test_a_body_over_the_size_cap_is_a_413_naming_the_limit(api_key_client, settings):
    # given: the cap follows the batch and text limits
    settings.TRIAGE_MAX_BATCH, settings.TRIAGE_MAX_MESSAGE_CHARS = 2, 100
    # when
    response = api_key_client().post(URL, {"texts": ["x" * 70_000]}, format="json")
    # then
    assert response.status_code == 413
    assert "the limit is 66736 bytes" in response.json()["error"]["message"]


def test_a_request_without_an_api_key_is_refused_and_nothing_is_loaded(api_client):
    # when
    response = api_client.post(URL, {"texts": ["hello"]}, format="json")
    # then
    assert response.status_code == 401
    assert ClassifierVersion.objects.count() == 0
