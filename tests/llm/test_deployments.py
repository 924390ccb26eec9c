"""Reading LLM deployments and fallbacks from the environment."""

from __future__ import annotations

import json

import pytest

from apps.llm.deployments import (
    LOCAL_EXTRACTIVE,
    Deployment,
    call_worst_case_seconds,
    deployments_from_env,
    fallbacks_from_env,
)
from config.env import ConfigurationError


def test_nothing_configured_resolves_every_alias_to_local_extractive():
    # given / when
    deployments = deployments_from_env({})
    # then
    assert deployments == {
        "draft-fast": (Deployment(LOCAL_EXTRACTIVE),),
        "draft-strong": (Deployment(LOCAL_EXTRACTIVE),),
        "judge": (Deployment(LOCAL_EXTRACTIVE),),
    }


def test_json_deployments_keep_their_order_and_fill_the_other_aliases():
    # given
    environ = {
        "OPENAI_API_KEY": "sk-1",
        "LLM_DEPLOYMENTS": json.dumps(
            {
                "draft-fast": [
                    {"model": "openai/gpt-4o-mini", "api_key_env": "OPENAI_API_KEY"},
                    {"model": "ollama/llama3", "api_base": "http://gpu:11434", "timeout": 5},
                ]
            }
        ),
    }
    # when
    deployments = deployments_from_env(environ)
    # then
    assert deployments["draft-fast"] == (
        Deployment("openai/gpt-4o-mini", api_key_env="OPENAI_API_KEY"),
        Deployment("ollama/llama3", api_base="http://gpu:11434", timeout=5.0),
    )
    assert deployments["draft-strong"] == (Deployment(LOCAL_EXTRACTIVE),)


def test_simple_variables_configure_one_alias():
    # given
    environ = {
        "LLM_DRAFT_STRONG_MODEL": "openai/gpt-4o, azure/gpt-4o",
        "LLM_DRAFT_STRONG_API_KEY_ENV": "KEY",
        "KEY": "k",
    }
    # when
    deployments = deployments_from_env(environ)
    # then
    assert deployments["draft-strong"] == (
        Deployment("openai/gpt-4o", api_key_env="KEY"),
        Deployment("azure/gpt-4o", api_key_env="KEY"),
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"draft-fast": [', "LLM_DEPLOYMENTS is not valid JSON"),
        ('["openai/gpt-4o"]', "must be a JSON object"),
        ('{"draft-fast": []}', "must be a non-empty list"),
        ('{"draft-fast": [{"name": "x"}]}', "unknown keys ['name']"),
        ('{"draft-fast": [{"model": ""}]}', ".model must be a non-empty string"),
        ('{"draft-fast": [{"model": "m", "timeout": "fast"}]}', ".timeout must be a number"),
        ('{"draft-fast": [{"model": "m", "timeout": 0}]}', ".timeout must be positive"),
        ('{"draft-fast": [{"model": "m", "api_base": "gpu:80"}]}', "api_base must be an http"),
        ('{"draft-fast": [{"model": "m", "api_key_env": "NOT_SET"}]}', "NOT_SET, which is not set"),
        ('{"Draft Fast": [{"model": "m"}]}', "must be lowercase letters"),
    ],
)
def test_bad_deployments_fail_loudly_naming_the_problem(value, message):
    # given / when / then
    with pytest.raises(ConfigurationError) as raised:
        deployments_from_env({"LLM_DEPLOYMENTS": value})
    assert message in str(raised.value)


def test_one_alias_configured_twice_is_refused():
    # given
    environ = {
        "LLM_DEPLOYMENTS": '{"draft-fast": [{"model": "openai/gpt-4o-mini"}]}',
        "LLM_DRAFT_FAST_MODEL": "openai/gpt-4o",
    }
    # when / then
    with pytest.raises(ConfigurationError, match="both configure 'draft-fast'"):
        deployments_from_env(environ)


def test_fallbacks_default_to_fast_and_strong_backing_each_other_up():
    # given / when
    fallbacks = fallbacks_from_env({}, aliases=deployments_from_env({}))
    # then
    assert fallbacks == {
        "draft-fast": ("draft-strong",),
        "draft-strong": ("draft-fast",),
        "judge": (),
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("draft-fast>draft-strong", "LLM_FALLBACKS is not valid JSON"),
        ('{"draft-fast": "draft-strong"}', "must be a list of alias names"),
        ('{"draft-fast": ["draft-huge"]}', "'draft-huge', which is not a configured alias"),
    ],
)
def test_bad_fallbacks_fail_loudly(value, message):
    # given / when / then
    with pytest.raises(ConfigurationError) as raised:
        fallbacks_from_env({"LLM_FALLBACKS": value}, aliases=deployments_from_env({}))
    assert message in str(raised.value)


def test_settings_module_refuses_bad_json_at_startup():
    # given: a fresh interpreter loading the settings with a broken LLM_DEPLOYMENTS
    import os
    import subprocess
    import sys

    env = dict(os.environ, LLM_DEPLOYMENTS="{oops", DJANGO_SETTINGS_MODULE="config.settings")
    # when
    completed = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; settings.LLM_DEPLOYMENTS"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then
    assert completed.returncode != 0
    assert "ConfigurationError: LLM_DEPLOYMENTS is not valid JSON" in completed.stderr


def test_the_longest_call_follows_the_slowest_deployment_of_each_alias_in_the_longest_chain():
    # given: fast (15 s and a 40 s backup) falls back to strong (default 30 s); judge alone
    deployments = {
        "draft-fast": (Deployment("openai/a", timeout=15), Deployment("openai/b", timeout=40)),
        "draft-strong": (Deployment("openai/c"),),
        "judge": (Deployment("openai/d", timeout=20),),
    }
    fallbacks = {"draft-fast": ("draft-strong",), "draft-strong": (), "judge": ()}
    # when
    seconds = call_worst_case_seconds(deployments, fallbacks, default_timeout=30, num_retries=1)
    # then: fast 3 x 40 + 8.75, then strong 3 x 30 + 8.75 (judge alone: 3 x 20 + 8.75)
    assert seconds == (3 * 40 + 8.75) + (3 * 30 + 8.75)
