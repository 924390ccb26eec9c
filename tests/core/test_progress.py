"""Long commands show progress: a bar on a terminal, a plain line per step elsewhere."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.core.progress import Progress

DEMO_KB = Path(__file__).resolve().parents[2] / "fixtures/demo/kb"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_and_a_log_gets_lines():
    # given
    terminal, log = Terminal(), io.StringIO()
    # when
    for stream in (terminal, log):
        with Progress("import", total=4, unit="file", stream=stream) as progress:
            for done in range(1, 5):
                progress.update(done, detail=f"{done - 1} failed" if done == 4 else "")
    # then: the bar redraws in place; the log has one line per step
    assert "\r" in terminal.getvalue() and "4/4" in terminal.getvalue()
    assert "100%" in terminal.getvalue()
    assert log.getvalue().splitlines() == [
        "import: 1/4", "import: 2/4", "import: 3/4", "import: 4/4 (3 failed)",
    ]  # fmt: skip


@pytest.mark.django_db
def test_kb_import_prints_a_line_per_batch_when_not_on_a_terminal():
    # given
    stdout, stderr = io.StringIO(), io.StringIO()
    # when
    call_command(
        "kb_import", str(DEMO_KB), "--source", "progress-test", stdout=stdout, stderr=stderr
    )
    # then
    lines = [line for line in stderr.getvalue().splitlines() if line.startswith("import into")]
    files = len([p for p in DEMO_KB.rglob("*") if p.is_file()])
    assert lines and lines[-1].startswith(f"import into progress-test: {files}/{files}")
    assert "\r" not in stderr.getvalue()
