"""Reading the tunables of a service from ``RuntimeOptions.extra`` or the environment, the former winning.

Why one reader: every setting of this kind (alarm retention ``alarms.<name>`` / ``INTERLUDE_ALARM_<NAME>``,
PM retention ``pm.<name>`` / ``INTERLUDE_PM_<NAME>``) must be found, disabled and rejected the same way, and a
malformed value must be a :class:`~interlude.errors.ConfigError` naming where it came from (the extra key or
the variable), so an operator can fix it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from interlude.errors import ConfigError

DISABLED = ("", "none", "off", "never")
"""Values (case-insensitive, trimmed) that switch a setting off."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting that was given: its name, where it came from (for error messages) and its raw value."""

    name: str
    where: str
    raw: object

    @property
    def disabled(self) -> bool:
        """The value switches the setting off (``none``, ``off``, ``never`` or empty)."""
        return isinstance(self.raw, str) and self.raw.strip().lower() in DISABLED

    def seconds(self, *, above_zero: bool = False, strict: bool = False) -> float:
        """The value as a number of seconds, not negative (nor zero with ``above_zero``).

        ``strict`` also rejects booleans and infinite or NaN values.
        """
        if strict and isinstance(self.raw, bool):
            raise ConfigError(f"{self.where} must be a number, not {self.raw!r}")
        try:
            value = float(self.raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ConfigError(f"{self.where} must be a number of seconds or 'none', not {self.raw!r}") from None
        if strict and not math.isfinite(value):
            raise ConfigError(f"{self.where} must be a finite number of seconds, not {self.raw!r}")
        if value < 0 or (above_zero and value <= 0):
            raise ConfigError(f"{self.where} must be positive, not {self.raw!r}")
        return value

    def count(self) -> int:
        """The value as a positive whole number (booleans are not numbers here)."""
        if isinstance(self.raw, bool):
            raise ConfigError(f"{self.where} must be a number, not {self.raw!r}")
        try:
            number = int(self.raw.strip()) if isinstance(self.raw, str) else self.raw
        except ValueError:
            number = None
        if not isinstance(number, int) or number < 1:
            raise ConfigError(f"{self.where} must be a positive whole number or 'none', not {self.raw!r}")
        return number


def given_settings(
    prefix: str,
    variables: Mapping[str, str],
    extra: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[Setting]:
    """The settings of ``variables`` (name -> environment variable) that are given, in that order.

    ``<prefix>.<name>`` in ``extra`` wins over the variable in ``env`` (default: the process environment); a
    setting given as None in ``extra`` counts as not given.
    """
    env = os.environ if env is None else env
    for name, var in variables.items():
        key = f"{prefix}.{name}"
        raw: object = (extra or {}).get(key, env.get(var))
        if raw is None:
            continue
        yield Setting(name, key if extra and key in extra else var, raw)
