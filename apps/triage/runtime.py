"""The active classifier, loaded once per process and reloaded when the active version changes.

Every call checks the active version's id with one indexed query; the artifact (megabytes)
is read and unpickled only when that id differs from the one in memory.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from celery.exceptions import SoftTimeLimitExceeded

from apps.triage import selectors
from apps.triage.classifier import IntentModel

_lock = threading.Lock()
_loaded: tuple[int, IntentModel] | None = None
# The model used before the last switch, kept so an evaluation run measuring another version
# in a worker that also serves live messages does not reload an artifact per batch.
_previous: tuple[int, IntentModel] | None = None
_load_count = 0
_unloadable_id: int | None = None
# A version standing in for the active one in this thread (an evaluation run measuring it).
_evaluated: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "classifier_evaluated", default=None
)
logger = logging.getLogger(__name__)


class ClassifierUnavailableError(Exception):
    """The active version's artifact cannot be loaded (another format, corrupt)."""


def load_count() -> int:
    """How many artifacts this process has loaded (for diagnostics and tests)."""
    return _load_count


@contextmanager
def classifier_evaluated(version_id: int | None) -> Iterator[None]:
    """Within: classification in this thread (or task) uses version `version_id` instead of
    the active one (None: the active one). For evaluation runs; live traffic is untouched."""
    token = _evaluated.set(version_id)
    try:
        yield
    finally:
        _evaluated.reset(token)


def active_model() -> tuple[int, IntentModel] | None:
    """(version id, model) of the active classifier (or of the version an evaluation put in
    its place, see `classifier_evaluated`), or None when no version is active."""
    global _loaded, _previous, _load_count, _unloadable_id
    active_id = _evaluated.get() or selectors.classifier_version_active_id()
    if active_id is None:
        return None
    if active_id == _unloadable_id:
        raise ClassifierUnavailableError(f"classifier version {active_id} cannot be loaded")
    loaded = _loaded
    if loaded is not None and loaded[0] == active_id:
        return loaded
    with _lock:
        if _loaded is not None and _loaded[0] == active_id:
            return _loaded
        if _previous is not None and _previous[0] == active_id:
            _loaded, _previous = _previous, _loaded
            return _loaded
        data = selectors.classifier_artifact(version_id=active_id)
        if data is None:
            return None
        try:
            model = IntentModel.from_bytes(data)
        except SoftTimeLimitExceeded:
            raise  # the task's time limit, not a bad artifact: the next load may well work
        except Exception as error:
            # Remembered, so a bad artifact costs one failed load per process, not one per call.
            _unloadable_id = active_id
            logger.error("classifier version %s cannot be loaded: %r", active_id, error)
            raise ClassifierUnavailableError(
                f"classifier version {active_id} cannot be loaded"
            ) from error
        _loaded, _previous = (active_id, model), _loaded
        _load_count += 1
        return _loaded
