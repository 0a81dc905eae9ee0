"""Sending a notify step's message on one of the tenant's channels (``config/channels.yaml``):
a Slack incoming webhook, e-mail over SMTP (``aiosmtplib``), or a signed JSON webhook. A channel
the tenant does not declare, or a secret its environment variable does not hold, is an attempt
refused with that name (retrying would not help): the delivery is dead and says why."""

from __future__ import annotations

import html
import time
from datetime import datetime
from email.message import EmailMessage

import aiohttp
import aiosmtplib
import orjson

from config.channels import ChannelFile, EmailChannel, MissingSecret, SlackChannel, WebhookChannel, from_env
from delivery.address_guard import Network
from delivery.http_send import Attempt, post
from delivery.messages import webhook_body
from delivery.signing import signed_headers
from store.deliveries import Claimed
from store.outbox import CHANNEL_PREFIX
from store.records import EventRecord


def run_link(public_url: str | None, run_id: str | None) -> str | None:
    return f"{public_url.rstrip('/')}/#/runs/{run_id}" if public_url and run_id else None


async def send_on_channel(claimed: Claimed, channels: ChannelFile, session: aiohttp.ClientSession, *,
                          now: datetime, timeout: float, allowed: tuple[Network, ...],
                          public_url: str | None) -> Attempt:
    delivery = claimed.delivery
    name = delivery.endpoint_id.removeprefix(CHANNEL_PREFIX)
    channel = channels.get(delivery.tenant_id, name)
    why = channels.refusal(delivery.tenant_id, name)
    if channel is None or why is not None:
        return Attempt(False, None, 0, f"refused: {why}", refused=True)
    message = dict(delivery.message or {}) if claimed.event is None else describe(claimed.event)
    link = run_link(public_url, delivery.run_id)
    try:
        if isinstance(channel, SlackChannel):
            return await post(session, from_env(channel.url_env), _slack_body(message, link, delivery.topic), {},
                              timeout=timeout, allowed=allowed)
        if isinstance(channel, WebhookChannel):
            body = webhook_body(claimed, public_url, now) if claimed.event is not None else orjson.dumps({
                "type": delivery.topic, "timestamp": delivery.created_at.isoformat(),
                "data": {**message, "channel": name, "run_id": delivery.run_id, "run_url": link}})
            secrets = [from_env(channel.secret_env)] if channel.secret_env else []
            headers = signed_headers(secrets, delivery.id, int(now.timestamp()), body) if secrets else {
                "webhook-id": delivery.id}
            return await post(session, channel.url or from_env(channel.url_env or ""), body, headers,
                              timeout=timeout, allowed=allowed)
        return await _email(channel, delivery.id, message, link, timeout)
    except MissingSecret as exc:
        return Attempt(False, None, 0, f"refused: channel {name!r}: {exc}", refused=True)


def describe(event: EventRecord) -> dict[str, object]:
    """A subscribed event as a channel's message: one line saying what happened to which run."""
    payload, run = event.payload, event.run_id
    if event.topic == "run.paused":
        text = f"Run {run} waits for a decision at {payload.get('gate')}: {payload.get('reason')}"
    elif event.topic == "run.failed":
        text = f"Run {run} failed: {payload.get('error')}"
    elif event.topic == "run.completed":
        text = f"Run {run} completed"
    else:
        text = f"{event.topic} on run {run}"
    return {"text": text, "template": event.topic, "target": None}


def _slack_body(message: dict[str, object], link: str | None, topic: str) -> bytes:
    """Text for notifications and clients without blocks; blocks with what the run's page links,
    and for a paused run the buttons that open its decision on the dashboard."""
    text = str(message.get("text", ""))
    target = message.get("target")
    blocks: list[dict[str, object]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    context = [f"for {target}"] if target else []
    if link:
        context.append(f"<{link}|the run on the dashboard>")
    if context:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    if link and topic == "run.paused":
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": label}, "url": f"{link}?decide={decision}",
             **({"style": style} if style else {})}
            for label, decision, style in (("Approve…", "approve", "primary"), ("Reject…", "reject", "danger"))
        ]})
    return orjson.dumps({"text": text, "blocks": blocks})


async def _email(channel: EmailChannel, delivery_id: str, message: dict[str, object], link: str | None,
                 timeout: float) -> Attempt:
    target = message.get("target")
    recipients = [str(target)] if target else list(channel.to)
    if not recipients:
        return Attempt(False, None, 0, f"refused: channel {channel.id!r} has no recipient: the step names none "
                                       f"and the channel's 'to' is empty", refused=True)
    hostname = channel.host or from_env(channel.host_env or "")
    username = from_env(channel.username_env) if channel.username_env else None
    password = from_env(channel.password_env) if channel.password_env else None
    text = str(message.get("text", ""))
    email = EmailMessage()
    email["From"], email["To"] = channel.sender, ", ".join(recipients)
    email["Subject"] = str(message.get("template") or text.splitlines()[0] if text else "Autopilot")[:120]
    email["Message-ID"] = f"<{delivery_id}@autopilot>"  # the same on a repeat, so mail clients can tell
    email.set_content(text + (f"\n\n{link}\n" if link else "\n"))
    link_html = f'<p><a href="{html.escape(link)}">The run on the dashboard</a></p>' if link else ""
    email.add_alternative(f"<p>{html.escape(text)}</p>{link_html}", subtype="html")
    started = time.monotonic()
    try:
        await aiosmtplib.send(
            email, hostname=hostname, port=channel.port, start_tls=channel.security == "starttls",
            use_tls=channel.security == "tls", username=username, password=password, timeout=timeout,
        )
    except aiosmtplib.SMTPException as exc:
        return Attempt(False, None, round((time.monotonic() - started) * 1000), f"SMTP: {exc}")
    except OSError as exc:
        return Attempt(False, None, round((time.monotonic() - started) * 1000), f"could not connect: {exc}")
    return Attempt(True, None, round((time.monotonic() - started) * 1000), None, f"accepted for {len(recipients)}")
