"""lso-interlude: a runnable MEF LSO Interlude partner (MEF APIs, southbound adapters, OAM, emulator, labs)."""

__version__ = "0.1.0"
