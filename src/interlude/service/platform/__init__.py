"""Platform use cases of every bounded context: bus, hub/notifier, jobs, network gateway, southbound, faults."""
