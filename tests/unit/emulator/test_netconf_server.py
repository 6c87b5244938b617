"""RFC 6241 subtree filtering as the emulator's NETCONF server implements it."""

from __future__ import annotations

from lxml import etree

from interlude.emulator.netconf_server import subtree_filter

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IF = "urn:ietf:params:xml:ns:yang:ietf-interfaces"
DATA = etree.fromstring(
    f"""<data xmlns="{NC}"><interfaces-state xmlns="{IF}">
    <interface><name>a</name><oper-status>up</oper-status><statistics><in-octets>1</in-octets></statistics></interface>
    <interface><name>b</name><oper-status>down</oper-status><statistics><in-octets>2</in-octets></statistics></interface>
    <interface><name>c</name><oper-status>up</oper-status><statistics><in-octets>3</in-octets></statistics></interface>
  </interfaces-state><interfaces xmlns="{IF}"/></data>"""
)


def flt(body: str) -> etree._Element:
    return etree.fromstring(f'<filter xmlns="{NC}" type="subtree">{body}</filter>')


def names(result: etree._Element) -> list[str]:
    return [e.text or "" for e in result.iter(f"{{{IF}}}name")]


def test_no_filter_returns_everything() -> None:
    assert subtree_filter(DATA, None) is DATA


def test_content_match_selects_entries_and_selection_picks_leaves() -> None:
    out = subtree_filter(
        DATA,
        flt(f'<interfaces-state xmlns="{IF}"><interface><name>a</name><oper-status/></interface>'
            f"<interface><name>c</name><statistics/></interface></interfaces-state>"),
    )  # fmt: skip
    assert names(out) == ["a", "c"]
    a, c = out[0]
    assert [etree.QName(x).localname for x in a] == ["name", "oper-status"]
    assert [etree.QName(x).localname for x in c] == ["name", "statistics"]
    assert len(out) == 1  # /interfaces was not asked for


def test_empty_container_selects_the_whole_subtree() -> None:
    out = subtree_filter(DATA, flt(f'<interfaces-state xmlns="{IF}"/>'))
    assert names(out) == ["a", "b", "c"]
    assert out.find(f".//{{{IF}}}in-octets") is not None


def test_leaf_content_match_filters_lists() -> None:
    out = subtree_filter(DATA, flt(f'<interfaces-state xmlns="{IF}"><interface><oper-status>up</oper-status>'
                                   "</interface></interfaces-state>"))  # fmt: skip
    assert names(out) == ["a", "c"]


def test_other_namespaces_do_not_match() -> None:
    out = subtree_filter(DATA, flt('<interfaces-state xmlns="urn:other"/>'))
    assert len(out) == 0
