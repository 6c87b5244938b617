"""The emulated adapter and the in-memory network it drives."""
