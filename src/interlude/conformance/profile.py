"""The profile: what a partner under test has that the kit cannot discover on its own.

Scenarios take what they need from discovery first (a listed service of the right type); whatever a partner
must provide (a test job's partner-specific configuration, a performance job, an address it serves) comes
from a small YAML file passed with ``--profile``. A scenario whose input is in neither skips and says which
profile key would let it run. Keys (all optional)::

    services:
      lock: pe1-uni1            # an Operator UNI the ordering lifecycle may lock and unlock
      refuse: ovc-1001-uni      # an OVC End Point whose CIR the policy scenario over-asks
    refusal: {...}              # or a whole order body the partner must refuse with a 422
    sft: {testJob: {...}}       # a TestJob_Create body
    pm: {performanceJob: {...}} # a PerformanceJob_Create body
    fm: {faultManagementJob: {...}} # a FaultManagementJob body
    sonata: {address: {...}, poq: {...}, quote: {...}, order: {...}, orderUndo: {...}}
    patience: 30                # seconds to wait for a state or a notification
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from interlude.errors import ConfigError


@dataclass(frozen=True)
class Profile:
    """The loaded profile (an empty one when no file is given)."""

    data: dict[str, Any] = field(default_factory=dict)
    source: str = "(none)"

    @classmethod
    def load(cls, path: Path | None) -> Profile:
        """Read a profile file; ``None`` gives the empty profile."""
        if path is None:
            return cls()
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read the profile {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"the profile {path} must be a mapping")
        return cls(data, str(path))

    def get(self, dotted: str, default: Any = None) -> Any:
        """The value at ``a.b.c``, or ``default``."""
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    @property
    def patience(self) -> float:
        """Seconds to wait for a state change or a notification."""
        return float(self.get("patience", 30))
