"""Find a data file: the user's folders first, then the copy shipped in this package.

Device profiles (``snmp/``, ``netconf/``) and topologies are data a partner extends without a code change: a
folder of its own (named in the topology's settings or an environment variable) is searched before the
bundled folder, so a file of the same name there replaces the shipped one. Keeping the rule in one function
keeps every kind of data found the same way, in a source checkout and in an installed wheel alike (both read
the package folder through :mod:`importlib.resources`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path


def bundled_dir(*parts: str) -> Path:
    """A folder of the package data, e.g. ``bundled_dir("snmp")`` (the package is installed as plain files)."""
    return Path(str(resources.files("interlude.data").joinpath(*parts)))


def search_path(
    bundled: str,
    user_dirs: Iterable[Path | str] = (),
    env_var: str | None = None,
    env: Mapping[str, str] | None = None,
) -> list[Path]:
    """The folders searched for a kind of data, first match wins.

    ``user_dirs`` in order, then each folder of ``$env_var`` (``os.pathsep``-separated), then the bundled
    folder ``bundled`` (relative to this package); a folder listed twice is searched once.
    """
    environ = os.environ if env is None else env
    dirs = [Path(d) for d in user_dirs]
    if env_var is not None:
        dirs += [Path(p) for p in environ.get(env_var, "").split(os.pathsep) if p]
    dirs.append(bundled_dir(bundled))
    unique: list[Path] = []
    seen: set[Path] = set()
    for folder in dirs:
        key = folder.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(folder)
    return unique


def find_file(filename: str, folders: Iterable[Path]) -> Path | None:
    """The first ``folder / filename`` that is a file, None when no folder has it."""
    for folder in folders:
        path = folder / filename
        if path.is_file():
            return path
    return None
