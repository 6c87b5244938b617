"""Fault Management: on-demand and proactive OAM jobs (loopback, linktrace, continuity)."""
