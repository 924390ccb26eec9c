"""Exceptions raised by services; the API and views turn them into 4xx answers."""


class DeskpilotError(Exception):
    """Base for errors a caller can act on. `message` is shown to the caller as is."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationError(DeskpilotError):
    """Input that breaks a rule: wrong shape, too large, unknown value."""


class NotFoundError(DeskpilotError):
    status_code = 404
    code = "not_found"


class PermissionDeniedError(DeskpilotError):
    status_code = 403
    code = "permission_denied"


class ConflictError(DeskpilotError):
    """The object changed under the caller (a state transition that no longer applies)."""

    status_code = 409
    code = "conflict"


class InvalidTransitionError(ConflictError):
    """A status change that the state machine does not allow from the current status."""

    code = "invalid_transition"


class ActivationRefusedError(ConflictError):
    """A new version (classifier, prompt, calibration) measured worse than the active one by
    the regression gate (apps/evaluation/gate.py); the message names the metrics."""

    code = "regression_gate_refused"


class ServiceUnavailableError(DeskpilotError):
    status_code = 503
    code = "unavailable"
