"""Where a lab's state is found: from any directory, by name, with one lab per name on the machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlude.errors import LabError
from interlude.lab.state import (
    MACHINE_LAB_ROOT,
    STATE_FILE,
    claim_lab_name,
    default_state_dir,
    find_lab_dir,
    release_lab_name,
)
from interlude.topology.loader import parse_topology
from interlude.topology.model import Topology


def _topology(name: str = "two-site") -> Topology:
    return parse_topology({"name": name, "nodes": {"a": {"kind": "lab", "interfaces": {"p1": {}}}}})


def _recorded(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STATE_FILE).write_text("{}")
    return folder


def test_the_default_is_machine_wide_not_the_current_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERLUDE_LAB_DIR", raising=False)
    assert default_state_dir(_topology()) == MACHINE_LAB_ROOT / "two-site"


def test_a_lab_in_an_explicit_folder_is_found_from_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLUDE_LAB_DIR", str(tmp_path / "machine"))
    topo = _topology()
    explicit = tmp_path / "project" / "state"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert find_lab_dir(topo) == tmp_path / "machine" / "two-site"  # nothing up: the default
    claim_lab_name(topo, explicit)
    _recorded(explicit)
    assert find_lab_dir(topo) == explicit.absolute()
    with pytest.raises(LabError, match="a lab named 'two-site' is already up"):
        claim_lab_name(topo, tmp_path / "other")
    with pytest.raises(LabError, match="already up"):
        claim_lab_name(topo, default_state_dir(topo))
    claim_lab_name(topo, explicit)  # the same lab again (its own folder) is not a second one
    release_lab_name(topo, explicit)
    assert find_lab_dir(topo) == default_state_dir(topo)
    claim_lab_name(topo, tmp_path / "other")


def test_a_lab_in_the_machine_folder_takes_the_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLUDE_LAB_DIR", str(tmp_path / "machine"))
    topo = _topology()
    _recorded(default_state_dir(topo))
    monkeypatch.chdir(tmp_path)
    assert find_lab_dir(topo) == default_state_dir(topo)
    with pytest.raises(LabError, match="already up"):
        claim_lab_name(topo, tmp_path / "mine")
    assert find_lab_dir(_topology("another")) == default_state_dir(_topology("another"))


def test_a_stale_pointer_and_an_older_local_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLUDE_LAB_DIR", str(tmp_path / "machine"))
    topo = _topology()
    claim_lab_name(topo, tmp_path / "gone")  # never recorded (a crash before the first save)
    claim_lab_name(topo, tmp_path / "new")  # a stale pointer does not hold the name
    monkeypatch.chdir(tmp_path)
    legacy = _recorded(tmp_path / ".interlude" / "labs" / "two-site")
    assert find_lab_dir(topo) == legacy
