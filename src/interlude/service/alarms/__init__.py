"""Alarm Management: raising, clearing, acknowledging and retaining alarms."""
