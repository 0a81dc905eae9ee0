"""The event bus: a small protocol and its in-process implementation."""

from eventbus.bus import Envelope, EventBus, Subscription
from eventbus.inprocess import Batch, InProcessBus
from eventbus.topics import topic_matches

__all__ = ["Batch", "Envelope", "EventBus", "InProcessBus", "Subscription", "topic_matches"]
