"""What an exception must look like to enter the pipeline, whether it comes over HTTP, from a
schedule's payload, or from an ingest source."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from config.rfc3339 import UtcDatetime

__all__ = ["Body", "ExceptionIn", "UtcDatetime"]


class Body(BaseModel):
    """Request bodies reject unknown fields, so a typo is an error and not a silent default."""

    model_config = ConfigDict(extra="forbid")


class ExceptionIn(Body):
    """An operational exception as a source system reports it; the tenant comes from the token."""

    source: str = Field(min_length=1, max_length=64, examples=["stripe"])
    source_id: str | None = Field(None, min_length=1, max_length=128, description="The source's own id")
    domain: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", examples=["payments"])
    type: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_*]+)*$", max_length=64, examples=["payment.failed"])
    code: str | None = Field(None, max_length=64, examples=["card_declined"])
    amount: Decimal | None = Field(None, ge=0, max_digits=18, decimal_places=4)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$", examples=["USD"])
    sla_deadline: UtcDatetime | None = None
    context: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _amount_has_currency(self) -> ExceptionIn:
        if self.amount is not None and self.currency is None:
            raise ValueError("currency is required when amount is given")
        return self
