"""Unit tests of the IP measurement engine."""
