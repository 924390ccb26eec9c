"""A real web process (uvicorn serving config.asgi, as `up` and the image run it)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from apps.accounts.services import api_key_create
from tests.conftest import wait_for, web_process

# The triage tests' fixtures: a ready classifier trained once per process on synthetic data.
from tests.triage.conftest import make_ready_version, synthetic_artifact  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_web_process_loads_the_active_classifier_before_its_first_request(
    make_ready_version,  # noqa: F811
    tmp_path,
):
    # given: an active classifier, and a web process that has served nothing yet
    version = make_ready_version(activate=True)
    _, key = api_key_create(name="web", scopes=["read"])
    log_path = tmp_path / "web.log"
    with web_process(log_path) as (_, port):
        # then: it loads the model and that classifier on its own
        line = wait_for(
            lambda: next(
                (ln for ln in log_path.read_text().splitlines() if "web process ready" in ln),
                None,
            ),
            timeout=90,
        )
        assert f"classifier version {version.id} loaded" in line
        # and: it classifies with it
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/triage/classify",
            data=json.dumps({"texts": ["someone stole my credit card"]}).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (http:)
            result = json.load(response)["results"][0]
        assert (result["intent"], result["classifier_version_id"]) == ("card_lost", version.id)
