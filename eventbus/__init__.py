"""The event bus: its contract (``EventBus``, ``Subscription``, ``Batch``, ``SubscriptionFilter``)
and the in-process implementation."""

from eventbus.batch import Batch
from eventbus.bus import EventBus, Subscription
from eventbus.envelope import Envelope
from eventbus.inprocess import InProcessBus
from eventbus.subscription_filter import SubscriptionFilter
from eventbus.topics import topic_matches

__all__ = [
    "Batch", "Envelope", "EventBus", "InProcessBus", "Subscription", "SubscriptionFilter", "topic_matches",
]
