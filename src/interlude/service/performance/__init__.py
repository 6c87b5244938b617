"""Performance Monitoring: profiles, jobs, measurement intervals, reports, retention and streaming."""
