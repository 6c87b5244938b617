"""The fast SNMPv2c codec agrees with pysnmp's encoder and decoder (pysnmp is the reference)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder  # type: ignore[import-untyped]
from pysnmp.proto import api, rfc1902, rfc1905

from interlude.adapters.snmp.fastv2c import (
    GETBULK,
    BerError,
    decode_oid,
    decode_response,
    encode_oid,
    encode_request,
)

v2c = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]

oids = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=20).map(lambda tail: (1, 3, 6, *tail))


@given(oids)
def test_oids_round_trip_like_pysnmp(oid: tuple[int, ...]) -> None:
    reference = encoder.encode(rfc1902.ObjectName(oid))
    body = encode_oid(oid)
    assert reference[0] == 0x06 and reference.endswith(body) and len(reference) - len(body) in (2, 3)
    assert decode_oid(encode_oid(oid)) == oid


def pysnmp_response(request_id: int, status: int, index: int, varbinds: list[tuple[tuple[int, ...], object]]) -> bytes:
    pdu = v2c.ResponsePDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_request_id(pdu, request_id)
    v2c.apiPDU.set_error_status(pdu, status)
    v2c.apiPDU.set_error_index(pdu, index)
    v2c.apiPDU.set_varbinds(pdu, varbinds)
    msg = v2c.Message()
    v2c.apiMessage.set_defaults(msg)
    v2c.apiMessage.set_community(msg, "public")
    v2c.apiMessage.set_pdu(msg, pdu)
    return bytes(encoder.encode(msg))


values = st.one_of(
    st.integers(-(2**31), 2**31 - 1).map(lambda v: (rfc1902.Integer32(v), v)),
    st.integers(0, 2**32 - 1).map(lambda v: (rfc1902.Counter32(v), v)),
    st.integers(0, 2**32 - 1).map(lambda v: (rfc1902.Gauge32(v), v)),
    st.integers(0, 2**64 - 1).map(lambda v: (rfc1902.Counter64(v), v)),
    st.integers(0, 2**32 - 1).map(lambda v: (rfc1902.TimeTicks(v), v)),
    st.binary(max_size=300).map(lambda v: (rfc1902.OctetString(v), v)),
    oids.map(lambda v: (rfc1902.ObjectIdentifier(v), v)),
    st.just((rfc1905.noSuchObject, "noSuchObject")),
    st.just((rfc1905.noSuchInstance, "noSuchInstance")),
    st.just((rfc1905.endOfMibView, "endOfMibView")),
)


@given(st.integers(0, 2**31 - 1), st.lists(st.tuples(oids, values), max_size=40))
def test_responses_decode_like_pysnmp_encodes_them(request_id: int, items: list) -> None:  # type: ignore[type-arg]
    data = pysnmp_response(request_id, 0, 0, [(oid, value[0]) for oid, value in items])
    rid, status, index, varbinds = decode_response(data)
    assert (rid, status, index) == (request_id, 0, 0)
    assert varbinds == [(oid, value[1]) for oid, value in items]


def test_error_status_and_index_come_through() -> None:
    data = pysnmp_response(7, 17, 2, [((1, 3, 6, 1), rfc1902.Integer32(1)), ((1, 3, 6, 2), rfc1902.Integer32(2))])
    assert decode_response(data)[:3] == (7, 17, 2)


def test_requests_decode_with_pysnmp() -> None:
    data = encode_request(
        b"c0mm", GETBULK, 123456, [(1, 3, 6, 1, 2, 1, 31, 1, 1), (1, 3, 6, 1, 2, 1, 2, 2, 1, 7)], 0, 25
    )
    msg, rest = decoder.decode(data, asn1Spec=v2c.Message())
    assert not rest
    assert str(v2c.apiMessage.get_community(msg)) == "c0mm"
    pdu = v2c.apiMessage.get_pdu(msg)
    assert pdu.tagSet == v2c.GetBulkRequestPDU.tagSet
    assert int(v2c.apiBulkPDU.get_request_id(pdu)) == 123456
    assert int(v2c.apiBulkPDU.get_max_repetitions(pdu)) == 25
    names = [tuple(name) for name, _ in v2c.apiBulkPDU.get_varbinds(pdu)]
    assert names == [(1, 3, 6, 1, 2, 1, 31, 1, 1), (1, 3, 6, 1, 2, 1, 2, 2, 1, 7)]


@pytest.mark.parametrize(
    "data",
    [b"", b"\x30\x03\x02\x01", b"\x30\x05\x02\x01\x00\x04\x00", b"\x04\x00", b"\x30\x84\xff\xff\xff\xff"],
)
def test_garbage_is_a_ber_error(data: bytes) -> None:
    with pytest.raises(BerError):
        decode_response(data)
