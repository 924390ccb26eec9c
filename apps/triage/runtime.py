"""The active classifier, loaded once per process and reloaded when the active version changes.

Every call checks the active version's id with one indexed query; the artifact (megabytes)
is read and unpickled only when that id differs from the one in memory.
"""

from __future__ import annotations

import logging
import threading

from celery.exceptions import SoftTimeLimitExceeded

from apps.triage import selectors
from apps.triage.classifier import IntentModel

_lock = threading.Lock()
_loaded: tuple[int, IntentModel] | None = None
_load_count = 0
_unloadable_id: int | None = None
logger = logging.getLogger(__name__)


class ClassifierUnavailableError(Exception):
    """The active version's artifact cannot be loaded (another format, corrupt)."""


def load_count() -> int:
    """How many artifacts this process has loaded (for diagnostics and tests)."""
    return _load_count


def active_model() -> tuple[int, IntentModel] | None:
    """(version id, model) of the active classifier, or None when no version is active."""
    global _loaded, _load_count, _unloadable_id
    active_id = selectors.classifier_version_active_id()
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
        _loaded = (active_id, model)
        _load_count += 1
        return _loaded
