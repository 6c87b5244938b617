"""Node settings validation, secrets kept out of messages, and the one place library errors are mapped."""

from __future__ import annotations

from pathlib import Path

import pytest
from ncclient.operations.errors import TimeoutExpiredError
from ncclient.operations.rpc import RPCError
from ncclient.transport.errors import AuthenticationError, SessionCloseError, SSHUnknownHostError
from ncclient.xml_ import to_ele

from interlude.adapters.netconf.session import HostKeyError, NetconfRpcError, map_exception
from interlude.adapters.netconf.settings import connect_params, parse_settings
from interlude.errors import (
    ConfigError,
    DeviceAuthError,
    DeviceConnectionError,
    DeviceTimeoutError,
    SecretError,
    TopologyError,
)
from interlude.topology.loader import parse_topology
from interlude.topology.model import NodeSpec


def node(settings: dict[str, object] | None = None, credentials: dict[str, object] | None = None) -> NodeSpec:
    topo = parse_topology(
        {
            "name": "t",
            "nodes": {
                "r1": {
                    "kind": "netconf",
                    "address": "192.0.2.1",
                    "settings": settings or {},
                    "credentials": credentials if credentials is not None else {"password": {"env": "NC_PW"}},
                }
            },
        }
    )
    return topo.node("r1")


def test_unknown_setting_points_at_the_key() -> None:
    with pytest.raises(TopologyError) as info:
        parse_settings(node({"hostkey_polcy": "insecure"}))
    assert info.value.path == "nodes.r1.settings.hostkey_polcy"


def test_pinned_policy_needs_a_key() -> None:
    with pytest.raises(TopologyError, match="pinned_key"):
        parse_settings(node({"hostkey_policy": "pinned"}))


def test_secrets_resolve_by_reference_and_never_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NC_PW", "s3cret-value")
    spec = node({"hostkey_policy": "insecure"})
    params = connect_params(spec, parse_settings(spec), tmp_path)
    assert params.password == "s3cret-value"
    assert params.port == 830
    assert "s3cret-value" not in repr(params)

    (tmp_path / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n")
    spec = node({"hostkey_policy": "insecure"}, {"private_key": {"file": "id_ed25519"}})
    params = connect_params(spec, parse_settings(spec), tmp_path)
    assert params.key_file == tmp_path / "id_ed25519" and params.key_material is None

    monkeypatch.setenv("NC_KEY", "-----BEGIN OPENSSH PRIVATE KEY-----")
    spec = node({}, {"private_key": {"env": "NC_KEY"}})
    params = connect_params(spec, parse_settings(spec), tmp_path)
    assert params.key_material is not None and "PRIVATE" not in repr(params)


def test_missing_secret_and_missing_credentials_are_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NC_PW", raising=False)
    spec = node()
    with pytest.raises(SecretError, match="env:NC_PW"):
        connect_params(spec, parse_settings(spec), tmp_path)
    spec = node({}, {})
    with pytest.raises(ConfigError, match=r"private_key or credentials\.password"):
        connect_params(spec, parse_settings(spec), tmp_path)
    spec = node({"known_hosts": "nope"}, {"password": {"file": "pw"}})
    (tmp_path / "pw").write_text("x")
    with pytest.raises(ConfigError, match="known_hosts file"):
        connect_params(spec, parse_settings(spec), tmp_path)


RPC_ERROR = """<rpc-error xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
  <error-type>application</error-type><error-tag>invalid-value</error-tag><error-severity>error</error-severity>
  <error-path>/interfaces/interface[name='e2']/type</error-path><error-message>invalid value</error-message>
</rpc-error>"""


def test_rpc_errors_keep_their_tag_and_path() -> None:
    mapped = map_exception(RPCError(to_ele(RPC_ERROR)), "r1", "edit-config candidate")
    assert isinstance(mapped, NetconfRpcError)
    assert (mapped.tag, mapped.error_type, mapped.severity) == ("invalid-value", "application", "error")
    assert mapped.path == "/interfaces/interface[name='e2']/type"
    assert str(mapped).startswith("r1: edit-config candidate: device refused (invalid-value at")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TimeoutExpiredError("ncclient timed out while waiting for an rpc reply."), DeviceTimeoutError),
        (AuthenticationError("Authentication failed."), DeviceAuthError),
        (SSHUnknownHostError("192.0.2.1", "aa:bb"), HostKeyError),
        (SessionCloseError("", ""), DeviceConnectionError),
        (ConnectionRefusedError(111, "Connection refused"), DeviceConnectionError),
        (TimeoutError(), DeviceTimeoutError),
    ],
)
def test_library_errors_map_to_the_interlude_tree(exc: BaseException, expected: type[Exception]) -> None:
    mapped = map_exception(exc, "r1", "connect")
    assert type(mapped) is expected
    assert mapped.node == "r1"
