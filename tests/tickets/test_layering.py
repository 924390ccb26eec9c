"""tickets sits below copilot, widget and api: it must not import them (ARCHITECTURE.md)."""

import ast
from pathlib import Path

import pytest

APPS = Path(__file__).resolve().parents[2] / "apps"

# app → apps it must never import (those above it, and its siblings).
FORBIDDEN = {
    "tickets": {
        "knowledge",
        "triage",
        "safety",
        "copilot",
        "feedback",
        "evaluation",
        "inbox",
        "widget",
        "api",
    },
    "copilot": {"feedback", "evaluation", "inbox", "widget", "api"},
    "widget": {"inbox", "api"},
}


def imported_apps(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return {name.split(".")[1] for name in names if name.startswith("apps.") and "." in name}


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_app_does_not_import_upwards_or_sideways(app):
    # when
    offending = {
        f"{path.relative_to(APPS)} imports apps.{name}"
        for path in (APPS / app).rglob("*.py")
        for name in imported_apps(path) & FORBIDDEN[app]
    }
    # then
    assert offending == set()
