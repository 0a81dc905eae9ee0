"""Notification channels (``config/channels.yaml``): where a playbook's ``notify`` steps send,
per tenant. A step names a channel by id (``channel: slack``); the tenant's channel of that id
says how. Secrets (a Slack webhook URL, an SMTP password, a webhook's signing secret) are named
by the environment variable that holds them (``*_env``), never written in the file, and read
when a message is sent, so a missing one fails that delivery with its name, visibly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from config.yaml_source import Declaration, check_unique_per_tenant, load_model

EnvName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,127}$")]
TopicPattern = Annotated[str, Field(pattern=r"^([a-z0-9_]+|\*|#)(\.([a-z0-9_]+|\*|#))*$", max_length=64)]


class _ChannelBase(Declaration):
    def secret_names(self) -> list[str]:
        """The environment variables this channel reads when it sends."""
        return [value for name, value in self if name.endswith("_env") and value]

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    tenant: str = Field(min_length=1, max_length=64)
    topics: list[TopicPattern] = Field(
        default_factory=list, description="Also a subscription: the tenant's events whose topics match (patterns "
        "as on the streams) are sent here, like a webhook endpoint's"
    )


class WebhookChannel(_ChannelBase):
    """A JSON POST, signed per Standard Webhooks when ``secret_env`` is set."""

    kind: Literal["webhook"]
    url: str | None = Field(None, pattern=r"^https?://")
    url_env: EnvName | None = None
    secret_env: EnvName | None = None

    @model_validator(mode="after")
    def _one_url(self) -> WebhookChannel:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url and url_env")
        return self


class SlackChannel(_ChannelBase):
    """A Slack incoming webhook; its URL is a secret, so it comes from the environment."""

    kind: Literal["slack"]
    url_env: EnvName


class EmailChannel(_ChannelBase):
    """SMTP, through ``aiosmtplib``: STARTTLS, TLS from the start, or neither (a local relay)."""

    kind: Literal["email"]
    sender: str = Field(alias="from", min_length=3, max_length=254)
    host: str | None = Field(None, min_length=1, max_length=255)
    host_env: EnvName | None = None
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    to: list[str] = Field(default_factory=list, description="Where a step that names no recipient sends")

    @model_validator(mode="after")
    def _one_host(self) -> EmailChannel:
        if (self.host is None) == (self.host_env is None):
            raise ValueError("give exactly one of host and host_env")
        return self


Channel = Annotated[WebhookChannel | SlackChannel | EmailChannel, Field(discriminator="kind")]


class ChannelFile(Declaration):
    channels: list[Channel] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ids_unique_per_tenant(self) -> ChannelFile:
        check_unique_per_tenant(self.channels, "channel")
        return self

    def subscriptions(self) -> dict[str, list[tuple[str, list[str]]]]:
        """Per tenant, each channel that subscribes to topics: (its id, its patterns)."""
        declared: dict[str, list[tuple[str, list[str]]]] = {}
        for channel in self.channels:
            if channel.topics:
                declared.setdefault(channel.tenant, []).append((channel.id, list(channel.topics)))
        return declared

    def refusal(self, tenant_id: str, channel_id: str) -> str | None:
        """Why a message for this channel cannot be sent as things are (no such channel for the
        tenant, or a variable it names is unset), or ``None``."""
        channel = self.get(tenant_id, channel_id)
        if channel is None:
            return f"tenant {tenant_id} has no channel {channel_id!r} (config/channels.yaml)"
        for name in channel.secret_names():
            if not os.environ.get(name):
                return f"channel {channel_id!r}: environment variable {name} is not set"
        return None

    def get(self, tenant_id: str, channel_id: str) -> WebhookChannel | SlackChannel | EmailChannel | None:
        """The tenant's channel; another tenant's is not found, like one that does not exist."""
        return next((c for c in self.channels if c.id == channel_id and c.tenant == tenant_id), None)


class MissingSecret(Exception):
    """A channel names an environment variable that is not set."""


def from_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise MissingSecret(f"environment variable {name} is not set")
    return value


def load_channels(path: Path) -> ChannelFile:
    """The declared channels; a missing file declares none."""
    return load_model(path, ChannelFile) if path.exists() else ChannelFile()
