"""Service Inventory: the services, their live oper state and its notifications; the topology as domain values."""
