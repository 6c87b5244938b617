"""Read a YAML data file into a pydantic model, with one error style for every kind of file.

Scenarios and SNMP profiles are written by hand; whatever is wrong with one (unreadable, not YAML, a bad
value) must come back as one :class:`~interlude.errors.ConfigError` naming the file and the key, the same way
for each kind of file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from interlude.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def load_model(path: Path, model: type[M], what: str) -> M:
    """``path`` parsed and validated as ``model``; ``what`` names the kind of file in errors ("scenario")."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}") from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"])
        raise ConfigError(f"{what} {path}: {where}: {err['msg']}") from None
