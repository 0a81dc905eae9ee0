"""Bodies and answers of the webhook and delivery routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from agents.exception_input import Body, UtcDatetime

TopicPattern = Annotated[str, StringConstraints(
    pattern=r"^([a-z0-9_]+|\*|#)(\.([a-z0-9_]+|\*|#))*$", max_length=64)]
"""A topic pattern as the streams take it: dot-separated segments of a-z, 0-9 and _, or ``*`` for
one segment and ``#`` for any number."""
DeliveryStatus = Literal["pending", "delivered", "dead", "cancelled"]


def unique(value: list[str] | None) -> list[str] | None:
    """The same pattern twice is kept once: it would deliver nothing more."""
    return None if value is None else list(dict.fromkeys(value))


class WebhookCreate(Body):
    """A new endpoint: where events are POSTed, signed per Standard Webhooks, and which topics.
    Its address must be public unless the operator allows it (``delivery_allowed_addresses``)."""

    url: AnyHttpUrl = Field(description="http or https; redirects are not followed")
    topics: list[TopicPattern] = Field(min_length=1, max_length=50, description="Topic patterns as on the streams: "
                              "`*` one segment, `#` any, e.g. `run.completed`, `run.*`, `approval.#`")
    description: str = Field("", max_length=500)
    enabled: bool = True

    _unique = field_validator("topics")(unique)


def _nulls_are_not_values(schema: dict[str, Any]) -> None:
    """Document what the server takes: a field may be left out, but not sent as ``null``."""
    for prop in schema.get("properties", {}).values():
        options = [option for option in prop.get("anyOf", []) if option != {"type": "null"}]
        if len(options) == 1:
            del prop["anyOf"]
            prop.pop("default", None)
            prop.update(options[0])


class WebhookPatch(Body):
    """What to change; a field left out stays as it is (``null`` is not a value). Enabling an
    endpoint clears its failures."""

    model_config = ConfigDict(json_schema_extra=_nulls_are_not_values)

    url: AnyHttpUrl | None = Field(None, description="http or https")
    topics: list[TopicPattern] | None = Field(None, min_length=1, max_length=50)
    description: str | None = Field(None, max_length=500)
    enabled: bool | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("null is not a value here: leave the field out to keep it as it is")
        return value

    _unique = field_validator("topics")(unique)


class RotateSecret(Body):
    overlap_seconds: float = Field(86400, ge=0, le=7 * 86400,
                                 description="How long the previous secret keeps signing beside the new one")


class WebhookOut(BaseModel):
    id: str
    url: str
    topics: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    consecutive_failures: int
    previous_secret_until: datetime | None = Field(description="While set and in the future, two secrets sign")
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret, shown this once (`whsec_…`)")


class WebhookList(BaseModel):
    items: list[WebhookOut]


class SecretRotated(BaseModel):
    secret: str = Field(description="The new signing secret, shown this once")
    previous_secret_until: datetime | None


class DeliveryOut(BaseModel):
    id: str = Field(description="Also the `webhook-id` header the receiver dedupes on")
    endpoint_id: str
    topic: str
    event_id: int | None
    run_id: str | None
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    give_up_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class AttemptOut(BaseModel):
    n: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    response_snippet: str | None


class DeliveryDetail(DeliveryOut):
    attempts_made: list[AttemptOut]


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None = None


class DeliveryQuery(Body):
    endpoint_id: str | None = Field(None, max_length=40)
    status: DeliveryStatus | None = None
    run_id: str | None = Field(None, max_length=40)
    created_after: UtcDatetime | None = None
    created_before: UtcDatetime | None = None
    cursor: str | None = Field(None, max_length=40)
    limit: int = Field(50, ge=1, le=200)


class DeliveryAccepted(BaseModel):
    delivery_id: str
    status: DeliveryStatus


class Redelivered(BaseModel):
    redelivered: int

