"""SNMP profiles: the shipped copy equals the top-level one, names resolve, bad files fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlude.adapters.snmp.profile import format_oid, load_profile, profile_search_path
from interlude.errors import ConfigError

ROOT = Path(__file__).resolve().parents[4]


def test_packaged_profiles_equal_the_top_level_ones() -> None:
    top = sorted((ROOT / "adapters" / "snmp").glob("*.yaml"))
    assert top, "adapters/snmp/*.yaml is missing"
    packaged = ROOT / "src" / "interlude" / "adapters" / "snmp" / "profiles"
    for path in top:
        copy = packaged / path.name
        assert copy.is_file(), f"{path.name} is not shipped in {packaged}"
        assert copy.read_bytes() == path.read_bytes(), f"{copy} differs from {path}: copy the top-level file"


def test_if_mib_profile_loads_with_numeric_oids() -> None:
    profile = load_profile("if-mib")
    assert profile.status.admin == (1, 3, 6, 1, 2, 1, 2, 2, 1, 7)
    assert format_oid(profile.name_columns[0]) == "1.3.6.1.2.1.31.1.1.1.1"
    assert profile.counters.hc is not None and len(profile.counters.hc.in_packets) == 3
    assert profile.counters.cache_s == 3.0
    assert profile.notifications is not None and profile.notifications.link_down[-1] == 3


def test_search_path_prefers_the_topology_folder(tmp_path: Path) -> None:
    own = tmp_path / "adapters" / "snmp"
    own.mkdir(parents=True)
    text = (ROOT / "adapters" / "snmp" / "if-mib.yaml").read_text().replace("cache_s: 3.0", "cache_s: 0.5")
    (own / "if-mib.yaml").write_text(text)
    assert profile_search_path(tmp_path)[0] == own
    assert load_profile("if-mib", tmp_path).counters.cache_s == 0.5


def test_profile_by_path_and_errors(tmp_path: Path) -> None:
    bad = tmp_path / "vendor.yaml"
    bad.write_text("name: vendor\nname_columns: [not-an-oid]\nstatus: {admin: 1.3.6, oper: 1.3.7}\ncounters: {}\n")
    with pytest.raises(ConfigError, match="not a numeric OID"):
        load_profile("vendor.yaml", tmp_path)
    with pytest.raises(ConfigError, match="no SNMP profile named 'nope'") as info:
        load_profile("nope", tmp_path)
    assert "adapters/snmp" in str(info.value)
