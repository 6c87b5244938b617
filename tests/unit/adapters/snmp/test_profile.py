"""SNMP profiles: the shipped one is package data, names resolve, bad files fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlude.adapters.snmp.profile import format_oid, load_profile, profile_search_path
from interlude.data.search import bundled_dir
from interlude.errors import ConfigError

SHIPPED = bundled_dir("snmp")


def test_the_shipped_profiles_are_package_data_on_the_search_path() -> None:
    assert (SHIPPED / "if-mib.yaml").is_file(), f"if-mib.yaml is not shipped in {SHIPPED}"
    assert profile_search_path()[-1] == SHIPPED


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
    text = (SHIPPED / "if-mib.yaml").read_text().replace("cache_s: 3.0", "cache_s: 0.5")
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
