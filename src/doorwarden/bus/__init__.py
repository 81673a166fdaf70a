"""Messages between server instances (docs/live-view.md, "Several instances").

`connect_bus(settings, database_is_sqlite=...)` gives the deployment's bus: NATS when
DOORWARDEN_NATS_URL names one (`NatsBus`), else this process alone (`LocalBus`). Both
offer the same `Bus`: fire-and-forget publish, subscriptions whose handler may answer a
request, request/reply with None for "nobody answers", and connection-state callbacks.
"""

from doorwarden.bus.base import Bus, BusUnavailable, Handler, Subscription
from doorwarden.bus.connect import check_bus, connect_bus
from doorwarden.bus.local import LocalBus
from doorwarden.bus.natsbus import NatsBus

__all__ = [
    "Bus",
    "BusUnavailable",
    "Handler",
    "LocalBus",
    "NatsBus",
    "Subscription",
    "check_bus",
    "connect_bus",
]
