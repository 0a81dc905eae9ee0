"""The copilot's failures. ``copilot`` may not import ``pipeline``, so these carry their own
stable codes; ``api`` turns them into the service's error tree (and HTTP statuses)."""

from __future__ import annotations

from typing import Any


class CopilotFailure(Exception):
    code = "COPILOT_ERROR"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotConfigured(CopilotFailure):
    code = "COPILOT_UNAVAILABLE"


class UpstreamFailed(CopilotFailure):
    code = "COPILOT_UPSTREAM_ERROR"


class UpstreamTimeout(CopilotFailure):
    code = "COPILOT_UPSTREAM_TIMEOUT"


class UnknownThread(CopilotFailure):
    code = "THREAD_NOT_FOUND"
