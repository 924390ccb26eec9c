"""Only apps/llm may import litellm or sentence-transformers (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from apps.llm.models import LLMCall
from apps.llm.services import cache_hit_record

ROOT = Path(__file__).resolve().parents[2]
GATED = ("litellm", "sentence_transformers")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_outside_apps_llm_imports_litellm_or_sentence_transformers():
    # given
    sources = [
        path
        for folder in ("apps", "config")
        for path in (ROOT / folder).rglob("*.py")
        if "migrations" not in path.parts and not path.is_relative_to(ROOT / "apps" / "llm")
    ]
    # when
    offenders = sorted(
        str(path.relative_to(ROOT)) for path in sources if _imports(path) & set(GATED)
    )
    # then
    assert sources
    assert offenders == []


@pytest.mark.django_db
def test_cache_hit_record_logs_a_free_cached_answer():
    # given / when
    row = cache_hit_record(
        purpose="draft",
        alias="draft-fast",
        model="openai/gpt-4o-mini",
        ticket_id=4,
        prompt_version=2,
    )
    # then
    stored = LLMCall.objects.get(id=row.id)
    assert (stored.cache_hit, stored.cost_usd, stored.status) == (True, 0, "succeeded")
    assert (stored.ticket_id, stored.prompt_version, stored.model) == (4, "2", "openai/gpt-4o-mini")
