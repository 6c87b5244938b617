"""Service Function Testing: test profiles, test jobs and their results."""
