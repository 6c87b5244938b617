"""Callback policy: each registration rule, the address policy after DNS resolution at delivery, the cap of
registrations per buyer, and the settings that tune them."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from interlude.app.runtime import Runtime
from interlude.app.web import create_app
from interlude.errors import ConfigError, RequestError, ValidationError
from interlude.service.platform.callbacks import MAX_CALLBACK_LENGTH, CallbackPolicy
from interlude.service.platform.hub import SERVICE_INVENTORY, SERVICE_ORDERING, HubService, Notifier
from interlude.service.platform.hub_settings import HubSettings
from interlude.store.base import ListenerHealth
from interlude.store.sqlite import SqliteStore
from interlude.topology.loader import bundled_topology_path, load_topology
from tests.support.delivery import Listener, publish, subscribe
from tests.support.partner import ALPHA, INV, fast_options
from tests.support.wait import wait_until

STRICT = CallbackPolicy()
LOCAL = CallbackPolicy(allow_private=True)


@pytest.mark.parametrize(
    ("callback", "why"),
    [
        ("ftp://sp.example.com/listener", "absolute http(s)"),
        ("/relative/listener", "absolute http(s)"),
        ("http://user:secret@sp.example.com/l", "credentials"),
        ("http://sp.example.com/l?x=", "query or fragment"),
        ("http://sp.example.com/l#x", "query or fragment"),
        ("http://sp.example.com/a/../admin", "path segments"),
        ("http://sp.example.com/a/%2e%2e/admin", "path segments"),
        ("http://sp.example.com/" + "a" * MAX_CALLBACK_LENGTH, "longer than"),
        ("http://sp.example.com/a b", "whitespace"),
        ("http://sp.example.com:0/l", "port"),
        ("http://127.0.0.1:8080/l", "loopback or private"),
        ("http://[::1]:8080/l", "loopback or private"),
        ("http://2130706433/l", "loopback or private"),  # 127.0.0.1 as one decimal number
        ("http://0x7f.0.0.1/l", "loopback or private"),
        ("http://[::ffff:127.0.0.1]/l", "loopback or private"),
        ("http://10.0.0.1/l", "loopback or private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://0.0.0.0/l", "not a unicast"),
    ],
)
def test_registration_refuses(callback: str, why: str) -> None:
    with pytest.raises(ValidationError) as info:
        STRICT.check(callback)
    assert why in str(info.value) and "secret" not in str(info.value)


def test_registration_accepts_public_names_and_addresses() -> None:
    for callback in ("https://sp.example.com/notifications", "http://8.8.8.8:8080/x", "http://[2001:4860::8888]/"):
        STRICT.check(callback)


def test_private_ranges_are_a_setting_but_link_local_never() -> None:
    LOCAL.check("http://127.0.0.1:8080/l")
    LOCAL.check("http://10.0.0.1/l")
    with pytest.raises(ValidationError, match="link-local"):
        LOCAL.check("http://169.254.169.254/")
    opened = CallbackPolicy(allowed_networks=(ipaddress.ip_network("10.9.0.0/16"),))
    opened.check("http://10.9.1.1/l")
    with pytest.raises(ValidationError):
        opened.check("http://10.8.1.1/l")


async def test_delivery_checks_the_resolved_address(tmp_path: Path) -> None:
    """A name registered while it looked public is refused when it resolves to a refused address."""
    store = SqliteStore(tmp_path / "p.db")
    await store.open()
    notifier = Notifier(store, base_delay_s=60, settings=HubSettings(allow_private_callbacks=False))
    store.on_outbox = notifier.wake
    try:
        async with Listener() as listener:
            await notifier.start()
            named, literal = f"http://localhost:{listener.port}", listener.url
            await subscribe(store, "named", named)
            await subscribe(store, "literal", literal)  # stored directly: registration would refuse it
            await publish(store, "named", named, [1])
            await publish(store, "literal", literal, [2])
            health = await wait_until(
                lambda: _both_failed(store), what="both deliveries refused", ignore=(AssertionError,)
            )
            assert listener.got == []
    finally:
        await notifier.stop()
        await store.close()
    errors = {h.subscription_id: h.last_error for h in health}
    assert "resolves only to refused addresses" in errors["named"]
    assert "loopback or private" in errors["literal"]


async def _both_failed(store: SqliteStore) -> list[ListenerHealth] | None:
    health = await store.listener_health()
    return health if len(health) == 2 else None


async def test_registrations_per_buyer_are_capped(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "cap.db")
    await store.open()
    hub = HubService(store, HubSettings(allow_private_callbacks=True, max_registrations_per_buyer=2))
    try:
        first = await hub.register(SERVICE_INVENTORY, "http://127.0.0.1:9/a", None, "sp-alpha")
        await hub.register(SERVICE_ORDERING, "http://127.0.0.1:9/b", None, "sp-alpha")  # counted across APIs
        with pytest.raises(RequestError) as info:
            await hub.register(SERVICE_INVENTORY, "http://127.0.0.1:9/c", None, "sp-alpha")
        assert info.value.status == 403
        await hub.register(SERVICE_INVENTORY, "http://127.0.0.1:9/c", None, "sp-beta")
        await hub.unregister(SERVICE_INVENTORY, first.id, "sp-alpha")
        await hub.register(SERVICE_INVENTORY, "http://127.0.0.1:9/c", None, "sp-alpha")
    finally:
        await store.close()


async def test_api_refuses_credentials_without_storing_or_echoing_them(tmp_path: Path) -> None:
    runtime = Runtime(load_topology(bundled_topology_path()), tmp_path / "api.db", options=fast_options())
    async with TestClient(TestServer(create_app(runtime))) as client:
        resp = await client.post(f"{INV}/hub", json={"callback": "http://sp:hunter2@127.0.0.1:9/x"}, headers=ALPHA)
        body = await resp.text()
        assert resp.status == 400 and "invalidBody" in body and "hunter2" not in body
        assert await runtime.store.list_subscriptions(SERVICE_INVENTORY.name) == []


def test_settings_from_extra_and_environment() -> None:
    topology = load_topology(bundled_topology_path())
    assert HubSettings.for_topology(topology).allow_private_callbacks  # the emulator: listeners are local
    env = {"INTERLUDE_HUB_ALLOW_PRIVATE_CALLBACKS": "no", "INTERLUDE_HUB_OUTBOX_RETENTION_S": "3600"}
    settings = HubSettings.from_settings({"hub.max_registrations_per_buyer": "none"}, env, local=True)
    assert not settings.allow_private_callbacks and settings.outbox_retention_s == 3600
    assert settings.max_registrations_per_buyer is None
    nets = HubSettings.from_settings({"hub.allowed_callback_networks": "10.9.0.0/16, fd00::/8"}, {})
    assert [str(n) for n in nets.allowed_callback_networks] == ["10.9.0.0/16", "fd00::/8"]
    for key, value in (("hub.allow_private_callbacks", "maybe"), ("hub.delivery_batch", "0"),
                       ("hub.allowed_callback_networks", "10.0.0.0/33")):  # fmt: skip
        with pytest.raises(ConfigError, match=key):
            HubSettings.from_settings({key: value}, {})
