"""The regression gate's hook for the apps below apps/evaluation.

New classifier, prompt and calibration versions go live only through the gate
(apps/evaluation/gate.py). The apps that own those versions sit below evaluation in the
layers, so they find the gate by its dotted path in ACTIVATION_GATE, as Django finds its
backends; empty switches it off.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.utils.module_loading import import_string


def activation_gate() -> Callable[..., object] | None:
    return import_string(settings.ACTIVATION_GATE) if settings.ACTIVATION_GATE else None
