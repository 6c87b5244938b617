"""Alarm retention settings (:class:`AlarmRetention`) and the helpers :meth:`AlarmService.expire` applies them with.

See :mod:`interlude.service.alarms.service` (Retention) and docs/alarms.md for what is cleared, deleted and notified.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from interlude.domain.alarms import TCA_STATELESS, AlarmRecord, FaultKind
from interlude.domain.model import parse_iso
from interlude.errors import ConfigError
from interlude.service.platform.settings import given_settings

_RETENTION_SETTINGS = {
    "stateless_tca_clear_s": "INTERLUDE_ALARM_STATELESS_TCA_CLEAR_S",
    "cleared_tca_delete_s": "INTERLUDE_ALARM_CLEARED_TCA_DELETE_S",
    "cleared_delete_s": "INTERLUDE_ALARM_CLEARED_DELETE_S",
    "sweep_interval_s": "INTERLUDE_ALARM_SWEEP_INTERVAL_S",
}


@dataclass(frozen=True, slots=True)
class AlarmRetention:
    """How long alarms that nothing else ends stay active, and how long cleared ones are kept (``None``: forever).

    Why: a stateless TCA (MEF 35.1) records one crossing and has no clear, so without an expiry every crossing
    of every PM job would stay an active alarm forever; and a busy network would grow the alarm history
    without bound. Settings (seconds; ``none``/``off`` disables a step), from ``RuntimeOptions.extra``
    (``alarms.<name>``) or the environment (``INTERLUDE_ALARM_<NAME>``), the former winning.
    """

    stateless_tca_clear_s: float | None = 900.0  # a stateless TCA alarm is cleared this long after it was raised
    cleared_tca_delete_s: float | None = 7 * 86400.0  # a cleared TCA alarm is deleted this long after its clear
    cleared_delete_s: float | None = None  # any other cleared alarm: kept as history unless set
    sweep_interval_s: float = 60.0  # how often the monitoring extension applies the retention

    @classmethod
    def from_settings(
        cls, extra: Mapping[str, object] | None = None, env: Mapping[str, str] | None = None
    ) -> AlarmRetention:
        """Read the settings (see the class docstring); a malformed value is a :class:`ConfigError`."""
        values: dict[str, float | None] = {}
        for setting in given_settings("alarms", _RETENTION_SETTINGS, extra, env):
            if setting.disabled:
                if setting.name == "sweep_interval_s":
                    raise ConfigError(f"{setting.where} cannot be disabled (give a number of seconds)")
                values[setting.name] = None
            else:
                values[setting.name] = setting.seconds(above_zero=setting.name == "sweep_interval_s")
        return cls(**values)  # type: ignore[arg-type]


def is_stateless_tca(rec: AlarmRecord) -> bool:
    """A stateless TCA alarm: a record of one crossing, never part of the active (de-duplicated) set."""
    return rec.kind is FaultKind.TCA and (rec.specific_attributes or {}).get("@type") == TCA_STATELESS


def age_s(stamp: str | None, now: float) -> float:
    """Seconds from an ISO timestamp to ``now`` (0 when absent or unreadable: never expire on bad data)."""
    if not stamp:
        return 0.0
    try:
        parsed = parse_iso(stamp)
    except ValueError:
        return 0.0
    return 0.0 if parsed is None else now - parsed.timestamp()
