"""SP-side helpers: a notification listener and a small client for registering on a partner's hubs."""
