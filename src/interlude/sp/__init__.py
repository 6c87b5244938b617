"""SP-side helpers: a notification listener and a small client for registering on a partner's hubs."""

from interlude.sp.listener import ReceivedEvent, SpListener

__all__ = ["ReceivedEvent", "SpListener"]
