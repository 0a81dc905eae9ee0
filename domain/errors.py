"""The error tree. Each error has a stable ``code``; ``api`` maps codes to HTTP statuses."""

from __future__ import annotations

from typing import Any


class AutopilotError(Exception):
    code = "INTERNAL_ERROR"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ValidationFailed(AutopilotError):
    """Input that does not fit; ``details`` lists ``{"field", "message"}`` items."""

    code = "VALIDATION_FAILED"


class UnsupportedMediaType(ValidationFailed):
    """A body in another format than the route reads (it reads JSON)."""

    code = "UNSUPPORTED_MEDIA_TYPE"


class UriTooLong(ValidationFailed):
    code = "URI_TOO_LONG"


class HeaderTooLarge(ValidationFailed):
    code = "HEADER_TOO_LARGE"


class Unauthorized(AutopilotError):
    code = "UNAUTHORIZED"


class Forbidden(AutopilotError):
    code = "FORBIDDEN"


class NotFound(AutopilotError):
    code = "NOT_FOUND"


class RunNotFound(NotFound):
    code = "RUN_NOT_FOUND"


class WorkflowNotFound(NotFound):
    code = "WORKFLOW_NOT_FOUND"


class PlaybookNotFound(NotFound):
    """Not in the library, or not approved for the caller's tenant (which is told apart from nothing)."""

    code = "PLAYBOOK_NOT_FOUND"


class RunNotPaused(AutopilotError):
    code = "RUN_NOT_PAUSED"


class IdempotencyKeyReused(AutopilotError):
    code = "IDEMPOTENCY_KEY_REUSED"


class Unavailable(AutopilotError):
    code = "SERVICE_UNAVAILABLE"


class StepNotFound(NotFound):
    code = "STEP_NOT_FOUND"


class StepNotCompletable(AutopilotError):
    """The step exists but is not waiting for a completion (for example, still pending)."""

    code = "STEP_NOT_COMPLETABLE"


class StepAlreadyTerminal(AutopilotError):
    code = "STEP_ALREADY_TERMINAL"


class RunChanged(AutopilotError):
    """The run kept changing under a request; retrying the request is safe."""

    code = "RUN_CHANGED"


class RunNotActive(AutopilotError):
    """The run has ended; what was asked only applies to a run still going."""

    code = "RUN_NOT_ACTIVE"


class RunNotWaiting(AutopilotError):
    """A step can only be completed while its run waits for input (not paused, not ended)."""

    code = "RUN_NOT_WAITING"


class LoopConflict(AutopilotError):
    """Something is already advancing this run."""

    code = "LOOP_CONFLICT"


class AlreadyApproved(AutopilotError):
    """This person's approval is already counted; another person must approve."""

    code = "ALREADY_APPROVED"


class ScheduleNotFound(NotFound):
    code = "SCHEDULE_NOT_FOUND"


class ScheduleExists(AutopilotError):
    """A schedule with this id already exists for the tenant."""

    code = "SCHEDULE_EXISTS"


class WebhookNotFound(NotFound):
    code = "WEBHOOK_NOT_FOUND"


class DeliveryNotFound(NotFound):
    code = "DELIVERY_NOT_FOUND"


class DeliveryPending(AutopilotError):
    """The delivery is already waiting to be sent; sending it again now would add nothing."""

    code = "DELIVERY_PENDING"


class WebhookChanged(AutopilotError):
    """The endpoint changed under the request; read it again and retry."""

    code = "WEBHOOK_CHANGED"


class CopilotUnavailable(Unavailable):
    """No model endpoint is configured; the message names the settings to set."""

    code = "COPILOT_UNAVAILABLE"


class CopilotUpstreamFailed(AutopilotError):
    """The model endpoint kept failing (429, 5xx, refused) or refused the request."""

    code = "COPILOT_UPSTREAM_ERROR"


class CopilotUpstreamTimeout(AutopilotError):
    """The model endpoint did not answer in time."""

    code = "COPILOT_UPSTREAM_TIMEOUT"


class ThreadNotFound(NotFound):
    code = "THREAD_NOT_FOUND"
