"""NETCONF profiles are data: loading, validation errors, search path, filter rendering."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from lxml import etree

from interlude.adapters.netconf.profile import available_profiles, load_profile, parse_profile, search_path
from interlude.data.search import bundled_dir
from interlude.errors import ConfigError

SHIPPED = bundled_dir("netconf")


def test_shipped_profiles_load_and_say_what_they_do() -> None:
    ietf = load_profile("ietf-interfaces")
    yuma = load_profile("yuma123")
    assert (ietf.admin.style, ietf.admin.verify) == ("enabled", "datastore")
    assert (yuma.admin.style, yuma.admin.read, yuma.admin.verify) == ("presence", "presence", "oper")
    assert yuma.quirks.validate_ is False  # yuma123 loses the edit after <validate>
    assert "type" in (yuma.templates.create or "")
    assert {"ietf-interfaces", "ietf-interfaces-nmda", "yuma123"} <= set(available_profiles())


def test_packaged_folder_is_on_the_search_path() -> None:
    """The shipped profiles are package data (one copy), searched after the user's folders."""
    assert (SHIPPED / "yuma123.yaml").is_file()
    assert any(d.resolve() == SHIPPED.resolve() for d in search_path())


def test_unknown_profile_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError, match=r"Available profiles are .*yuma123"):
        load_profile("no-such-device")
    with pytest.raises(ConfigError):
        load_profile("../etc/passwd")


def test_partner_profile_from_an_extra_directory(tmp_path: Path) -> None:
    raw = yaml.safe_load((SHIPPED / "ietf-interfaces.yaml").read_text())
    raw["name"] = "acme-switch"
    raw["paths"]["mtu"] = "acme:mtu"
    raw["namespaces"]["acme"] = "urn:acme"
    (tmp_path / "acme-switch.yaml").write_text(yaml.safe_dump(raw))
    profile = load_profile("acme-switch", [tmp_path])
    assert profile.paths.mtu == "acme:mtu"
    assert "acme-switch" in available_profiles([tmp_path])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["admin"].update(style="presence"), "templates.create"),
        (lambda r: r["templates"].update(set_enabled="<config><oops></config>"), "well-formed"),
        (lambda r: r["admin"].update(style="blink"), "admin.style"),
        (lambda r: r.update(colour="red"), "colour"),
    ],
)
def test_invalid_profiles_name_the_problem(mutate: object, message: str) -> None:
    raw = yaml.safe_load((SHIPPED / "ietf-interfaces.yaml").read_text())
    assert callable(mutate)
    mutate(raw)
    with pytest.raises(ConfigError, match=message):
        parse_profile(raw, "test.yaml")


def test_name_must_match_the_file(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text((SHIPPED / "yuma123.yaml").read_text())
    with pytest.raises(ConfigError, match="must match the file name"):
        load_profile("other", [tmp_path])


def test_filters_select_many_interfaces_and_escape_names() -> None:
    profile = load_profile("ietf-interfaces")
    flt = etree.fromstring(profile.filter("counters", ["ge-0/0/1", 'a<b"c']))
    names = [e.text for e in flt.iter("{urn:ietf:params:xml:ns:yang:ietf-interfaces}name")]
    assert names == ["ge-0/0/1", 'a<b"c']
    assert len(flt.findall("{*}interface/{*}statistics")) == 2
    everything = etree.fromstring(profile.filter("state", None))
    assert len(everything) == 1 and len(everything[0]) == 0  # <interface/>: every entry, whole
