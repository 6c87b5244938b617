"""Error mapping at the pysnmp boundary, credential hygiene, and the multi-column GETBULK walker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from pysnmp.proto import errind, rfc1902, rfc1905
from pysnmp.proto.rfc1905 import errorStatus as ErrorStatus

from interlude.adapters.snmp.session import (
    Missing,
    SnmpCredentials,
    SnmpNoSuchObjectError,
    SnmpSession,
    SnmpStatusError,
    VarBind,
    to_python,
)
from interlude.errors import ConfigError, DeviceAuthError, DeviceConnectionError, DeviceTimeoutError

V2 = SnmpCredentials(version="2c", community="c0mmunity-secret", write_community="wr1te-secret")
V3 = SnmpCredentials(version="3", v3_user="ops", v3_auth_key="auth-secret-1", v3_priv_key="priv-secret-1")


def session(creds: SnmpCredentials = V2, **kw: Any) -> SnmpSession:
    return SnmpSession(node="pe1", host="192.0.2.1", port=161, credentials=creds, **kw)


def test_credentials_never_show_secrets() -> None:
    for creds in (V2, V3):
        text = repr(creds) + str(creds) + repr(session(creds))
        for secret in ("c0mmunity-secret", "wr1te-secret", "auth-secret-1", "priv-secret-1"):
            assert secret not in text


@pytest.mark.parametrize(
    ("creds", "message"),
    [
        (SnmpCredentials(version="2c"), "community"),
        (SnmpCredentials(version="3", v3_user="u", v3_auth_key="longenough"), "v3_priv_key"),
        (SnmpCredentials(version="3", v3_user="u", v3_auth_key="short", v3_priv_key="longenough"), "8 characters"),
        (
            SnmpCredentials(version="3", v3_user="u", v3_auth_key="a" * 8, v3_priv_key="b" * 8, v3_auth_protocol="X"),
            "SHA-256",
        ),
    ],
)
def test_unusable_credentials_fail_before_any_packet(creds: SnmpCredentials, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        session(creds)


def test_v2c_reads_with_the_read_community_and_writes_with_the_write_one() -> None:
    assert V2.auth_data().communityName == "c0mmunity-secret"
    assert V2.auth_data(write=True).communityName == "wr1te-secret"
    assert SnmpCredentials(version="2c", community="only").auth_data(write=True).communityName == "only"


def status(name: str) -> Any:
    return ErrorStatus.clone(name)


def test_timeouts_and_auth_failures_map_to_the_error_tree() -> None:
    s = session(timeout_s=0.5, retries=2)
    with pytest.raises(DeviceTimeoutError, match=r"no answer after 3 x 0.5 s \(wrong community\?\)"):
        s._check("GET", (errind.requestTimedOut, 0, 0, ()), [])
    v3 = session(V3)
    for indication in (errind.wrongDigest, errind.unknownUserName, errind.decryptionError):
        with pytest.raises(DeviceAuthError, match="refused the SNMPv3 credentials \\(user 'ops'\\)") as info:
            v3._check("GET", (indication, 0, 0, ()), [])
        assert "auth-secret-1" not in str(info.value)
    with pytest.raises(DeviceConnectionError):
        s._check("GET", (errind.tooBig, 0, 0, ()), [])


def test_error_statuses_name_the_status_and_the_oid() -> None:
    s = session()
    oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 2, 3)
    with pytest.raises(SnmpStatusError, match=r"notWritable at 1\.3\.6\.1\.2\.1\.2\.2\.1\.2\.3") as info:
        s._check("SET", (None, status("notWritable"), 1, ()), [oid])
    assert info.value.status == "notWritable" and info.value.oid == oid and info.value.node == "pe1"
    with pytest.raises(SnmpStatusError) as gen:
        s._check("SET", (None, status("genErr"), 1, ()), [oid])
    assert gen.value.status == "genErr"
    with pytest.raises(SnmpNoSuchObjectError):
        s._check("GET", (None, status("noSuchName"), 1, ()), [oid])
    with pytest.raises(DeviceAuthError, match="no access"):
        s._check("SET", (None, status("noAccess"), 1, ()), [oid])


def test_values_become_plain_python() -> None:
    assert to_python(rfc1902.Counter64(2**40)) == 2**40
    assert to_python(rfc1902.OctetString(b"\x02\x00")) == b"\x02\x00"
    assert to_python(rfc1902.ObjectIdentifier((1, 3, 6))) == (1, 3, 6)
    assert to_python(rfc1905.noSuchObject) is Missing.NO_SUCH_OBJECT
    assert to_python(rfc1905.noSuchInstance) is Missing.NO_SUCH_INSTANCE
    assert to_python(rfc1905.endOfMibView) is Missing.END_OF_MIB_VIEW


class FakeAgent:
    """Answers GETBULK from a sorted table, truncating like net-snmp (whole rows, <= max_varbinds)."""

    def __init__(self, table: dict[tuple[int, ...], int], max_varbinds: int = 100) -> None:
        self.oids = sorted(table)
        self.table = table
        self.max_varbinds = max_varbinds
        self.requests = 0

    async def bulk(self, oids: Sequence[tuple[int, ...]], reps: int) -> list[VarBind]:
        self.requests += 1
        reps = min(reps, self.max_varbinds // len(oids))
        out: list[VarBind] = []
        cursors = list(oids)
        for _ in range(reps):
            for i, cur in enumerate(cursors):
                nxt = next((o for o in self.oids if o > cur), None)
                if nxt is None:
                    out.append((cur, Missing.END_OF_MIB_VIEW))
                else:
                    out.append((nxt, self.table[nxt]))
                    cursors[i] = nxt
        return out


async def test_column_walk_reads_columns_side_by_side_in_few_round_trips() -> None:
    cols = [(1, 3, 6, 1, 9, 1, c) for c in (1, 2, 3)]
    table: dict[tuple[int, ...], int] = {(*col, row): col[-1] * 1000 + row for col in cols for row in range(1, 51)}
    table[(1, 3, 6, 1, 9, 2, 1)] = 0  # something after the table
    agent = FakeAgent(table)
    s = session()
    s.bulk = agent.bulk  # type: ignore[method-assign, assignment]
    result = await s.walk_columns(cols)
    assert all(len(result[col]) == 50 for col in cols)
    assert result[cols[1]][(7,)] == 2007
    assert agent.requests == 2  # 150 varbinds at 99 per response


async def test_column_walk_stops_on_a_non_increasing_agent() -> None:
    col = (1, 3, 6, 1, 9, 1, 1)

    async def stuck(oids: Sequence[tuple[int, ...]], reps: int) -> list[VarBind]:
        return [((*col, 1), 5)]

    s = session()
    s.bulk = stuck  # type: ignore[method-assign, assignment]
    assert await s.walk_columns([col]) == {col: {(1,): 5}}
