"""The model endpoint: an ``AsyncOpenAI`` client built from settings, and one call to it with
our own retries (the client's are off), so 429/5xx back off as configured and every failure
ends as one of the copilot's errors in ``domain.errors``."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
from openai import AsyncOpenAI

from config.settings import Settings
from domain.errors import CopilotUnavailable, CopilotUpstreamFailed, CopilotUpstreamTimeout


def not_configured(settings: Settings) -> CopilotUnavailable:
    missing = settings.llm_missing
    return CopilotUnavailable(
        f"The copilot is not configured: set {' and '.join(missing)} (and AUTOPILOT_LLM_API_KEY if the endpoint "
        "needs one) to an OpenAI-compatible endpoint and model.",
        {"missing_settings": missing},
    )


def openai_client(settings: Settings, http_client: httpx.AsyncClient | None = None) -> AsyncOpenAI | None:
    """A client for the configured endpoint, or None when there is none."""
    if settings.llm_missing:
        return None
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "unused"
    return AsyncOpenAI(
        base_url=settings.llm_base_url, api_key=key, timeout=settings.llm_timeout_seconds, max_retries=0,
        http_client=http_client,
    )


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, openai.APITimeoutError):
        return False
    if isinstance(exc, openai.APIConnectionError):
        return True
    return isinstance(exc, openai.APIStatusError) and (exc.status_code == 429 or exc.status_code >= 500)


async def chat(client: AsyncOpenAI, settings: Settings, **request: Any) -> Any:
    """One chat completion; 429, 5xx and refused connections are retried with doubling backoff
    (``llm_max_retries``, ``llm_retry_backoff_seconds``), then ``CopilotUpstreamFailed``; a
    timeout is ``CopilotUpstreamTimeout`` at once (waiting again would double the wait)."""
    if settings.llm_model is None:
        raise not_configured(settings)
    attempts = settings.llm_max_retries + 1
    for attempt in range(attempts):
        try:
            return await client.chat.completions.create(model=settings.llm_model, **request)
        except openai.APITimeoutError as exc:
            raise CopilotUpstreamTimeout(
                f"the model endpoint did not answer within {settings.llm_timeout_seconds:g} s",
                {"timeout_seconds": settings.llm_timeout_seconds},
            ) from exc
        except (openai.APIConnectionError, openai.APIStatusError) as exc:
            status = getattr(exc, "status_code", None)
            if not _retryable(exc) or attempt == attempts - 1:
                tried = f" after {attempt + 1} attempts" if _retryable(exc) else ""
                raise CopilotUpstreamFailed(
                    f"the model endpoint failed{tried}: {status or 'no answer'} {_reason(exc)}".rstrip(),
                    {"upstream_status": status, "attempts": attempt + 1},
                ) from exc
            await asyncio.sleep(settings.llm_retry_backoff_seconds * 2**attempt)
        except openai.APIError as exc:  # an answer that is not a chat completion
            raise CopilotUpstreamFailed(f"the model endpoint answered something unusable: {_reason(exc)}") from exc
    raise AssertionError("unreachable")


def _reason(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return message[:300]
