"""Effects that leave the service: webhook, Slack and e-mail deliveries, sent from the outbox."""
