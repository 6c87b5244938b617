"""The generated snmpd.conf (pure rendering; starting snmpd is covered by the lab tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlude.errors import ConfigError
from interlude.lab.agents.snmpd import SnmpdConfig, SnmpV3User, render_snmpd_conf

USER = SnmpV3User("ops", "auth-secret-1", "priv-secret-1")


def test_renders_listen_communities_user_and_numeric_link_monitors() -> None:
    conf = render_snmpd_conf(
        SnmpdConfig("pe1", ["10.0.0.2", "127.0.0.1:1161"], "ro1", "rw1", [USER], "10.0.0.1:16200", "ro1"),
        Path("/state/persist"),
    )
    assert "agentAddress udp:10.0.0.2:161,udp:127.0.0.1:1161\n" in conf
    assert "[snmp] persistentDir /state/persist\n" in conf
    assert "rocommunity ro1 default\n" in conf and "rwcommunity rw1 default\n" in conf
    assert 'createUser ops SHA-256 "auth-secret-1" AES "priv-secret-1"\n' in conf
    assert "rwuser ops priv\n" in conf
    assert "trap2sink udp:10.0.0.1:16200 ro1\n" in conf  # unquoted: snmpd would send the quotes
    assert "monitor -r 1 -e linkDownTrap" in conf and ".1.3.6.1.2.1.2.2.1.8 == 2" in conf
    assert "notificationEvent linkDownTrap .1.3.6.1.6.3.1.1.5.3 .1.3.6.1.2.1.2.2.1.1" in conf
    assert "linkUpDownNotifications" not in conf  # its 60 s period and named OIDs do not work here


def test_v3_traps_use_trapsess() -> None:
    conf = render_snmpd_conf(
        SnmpdConfig("pe1", ["10.0.0.2"], None, None, [USER], "10.0.0.1", trap_v3_user="ops"), Path("/p")
    )
    assert (
        "trapsess -v3 -l authPriv -u ops -a SHA-256 -A auth-secret-1 -x AES -X priv-secret-1 udp:10.0.0.1:162" in conf
    )
    assert "rocommunity" not in conf and "trap2sink" not in conf


def test_no_traps_without_a_target() -> None:
    conf = render_snmpd_conf(SnmpdConfig("pe1", ["10.0.0.2"]), Path("/p"))
    assert "trap2sink" not in conf and "monitor" not in conf


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (SnmpdConfig("x", []), "listen"),
        (SnmpdConfig("x", ["1.2.3.4"], ro_community="two words"), "spaces"),
        (SnmpdConfig("x", ["1.2.3.4"], v3_users=[SnmpV3User("u", "short", "longenough")]), "8 characters"),
        (SnmpdConfig("x", ["1.2.3.4"], v3_users=[SnmpV3User("u", "longenough", "longenough", "SHA-999")]), "auth"),
        (SnmpdConfig("x", ["1.2.3.4"], trap_target="1.2.3.5", trap_v3_user="ghost"), "trap_v3_user"),
    ],
)
def test_bad_configs_are_refused(config: SnmpdConfig, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        render_snmpd_conf(config, Path("/p"))


def test_reprs_hide_secrets() -> None:
    config = SnmpdConfig("pe1", ["10.0.0.2"], "ro-secret", "rw-secret", [USER])
    text = repr(config) + repr(USER)
    for secret in ("ro-secret", "rw-secret", USER.auth_key, USER.priv_key):
        assert secret not in text
