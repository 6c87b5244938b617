"""Service Ordering: validating, planning and applying orders on the network."""
