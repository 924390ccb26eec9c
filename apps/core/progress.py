"""Progress of long commands (kb_import, kb_reembed, triage_train, eval_run): a bar on a
terminal (tqdm), and a plain line per step when the output goes to a file or a CI log, where
a bar's carriage returns would be noise. Commands pass `command_stream(self.stderr)`."""

from __future__ import annotations

import sys
from typing import IO, Any

from tqdm import tqdm


class Progress:
    def __init__(
        self, description: str, *, total: int | None = None, unit: str = "it",
        stream: IO[str] | None = None,
    ) -> None:  # fmt: skip
        self.description = description
        self.stream = stream or sys.stderr
        self.total = total
        self.done = 0
        self.detail = ""
        self.bar: Any = None
        if self.stream.isatty():
            self.bar = tqdm(
                total=total, desc=description, unit=unit, file=self.stream, dynamic_ncols=True
            )

    def update(self, done: int, *, total: int | None = None, detail: str = "") -> None:
        """`done` of `total` so far (absolute counts), with a short `detail`."""
        if total is not None:
            self.total = total
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.n = done
            if detail:
                self.bar.set_postfix_str(detail, refresh=False)
            self.bar.refresh()
        elif done != self.done or detail != self.detail:
            of = f"/{self.total}" if self.total is not None else ""
            extra = f" ({detail})" if detail else ""
            self.stream.write(f"{self.description}: {done}{of}{extra}\n")
            self.stream.flush()
        self.done, self.detail = done, detail

    def step(self, name: str) -> None:
        """One more step done, called `name` (phases of a job whose steps are not counts)."""
        self.update(self.done + 1, detail=name)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def command_stream(wrapper: Any) -> IO[str]:
    """The stream under a management command's stderr (Django's OutputWrapper adds a newline
    to each write, which would break a bar that redraws in place)."""
    return getattr(wrapper, "_out", wrapper)
