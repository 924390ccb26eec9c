"""ARCHITECTURE.md's rules as checks that fail, not hopes."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
APPS_DIR = BASE_DIR / "apps"
MODEL_LIBRARIES = {"litellm", "sentence_transformers", "transformers", "torch"}


def imported_top_level_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module.split(".")[0])
    return modules


def test_only_the_llm_app_imports_model_libraries():
    # given: every Python file of the project outside apps/llm
    offenders = []
    for path in [*APPS_DIR.rglob("*.py"), *(BASE_DIR / "config").rglob("*.py")]:
        if path.is_relative_to(APPS_DIR / "llm"):
            continue
        # when
        found = imported_top_level_modules(path) & MODEL_LIBRARIES
        if found:
            offenders.append(f"{path.relative_to(BASE_DIR)}: {sorted(found)}")
    # then
    assert offenders == []


def test_every_app_has_a_place_in_the_layers_contract():
    # given
    config = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())
    layers = config["tool"]["importlinter"]["contracts"][0]["layers"]
    named = {name.strip(" ()") for layer in layers for name in layer.split("|")}
    # when
    apps = {f"apps.{path.name}" for path in APPS_DIR.iterdir() if (path / "__init__.py").exists()}
    # then
    assert apps - named == set()


def test_apps_import_down_the_layers_only():
    # when
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    # then
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


@pytest.mark.slow
def test_apps_type_check_with_mypy(mypy_result):
    # given: STYLE.md's rule, mypy with django-stubs on apps/ (configured in pyproject.toml)
    # when: it ran (started in the background when the run was collected, tests/conftest.py)
    code, output = mypy_result
    # then
    assert code == 0, output[-5000:]
