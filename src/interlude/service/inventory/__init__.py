"""Service Inventory: the services, their live operational state and its notifications."""
