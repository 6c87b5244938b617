"""``interlude emulate --oauth-clients FILE --tls-cert/--tls-key`` as a real process: HTTPS, tokens, scopes."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from interlude.cli.serve import emulate
from interlude.service.platform.authz import hash_secret
from tests.support.tlscerts import TestCa
from tests.support.wait import wait_until_sync

INV = "/mefApi/interlude/serviceInventory/v2"
SECRET = "alpha-secret-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(url: str, context: ssl.SSLContext, headers: dict[str, str], data: bytes | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, headers=headers, data=data)
    try:
        with urllib.request.urlopen(req, timeout=5, context=context) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_emulate_over_https_with_the_built_in_authorization_server(tmp_path: Path) -> None:
    ca = TestCa(tmp_path)
    cert = ca.issue("partner", server=True)
    clients = tmp_path / "clients.yaml"
    clients.write_text(
        "clients:\n"
        f"  - {{client_id: alpha-app, buyer: sp-alpha, scopes: [serviceFind], secret_hash: '{hash_secret(SECRET)}'}}\n"
    )
    port = _free_port()
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "interlude"), "emulate", "--port", str(port), "--db",
         str(tmp_path / "emu.db"), "--no-device-agents", "--oauth-clients", str(clients),
         "--tls-cert", str(cert.cert), "--tls-key", str(cert.key)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path, env=env,
    )  # fmt: skip
    context = ssl.create_default_context(cafile=str(ca.cert_path))
    base = f"https://127.0.0.1:{port}"
    try:
        status, body = wait_until_sync(
            lambda: _call(f"{base}{INV}/service", context, {"X-Interlude-Buyer": "sp-alpha"}),
            timeout=30, interval=0.2, ignore=(OSError,), what="the partner to serve over HTTPS",
        )  # fmt: skip
        assert status == 401 and body["code"] == "missingCredentials"
        basic = base64.b64encode(f"alpha-app:{SECRET}".encode()).decode()
        form = urllib.parse.urlencode({"grant_type": "client_credentials"}).encode()
        status, granted = _call(f"{base}/oauth2/token", context, {"Authorization": f"Basic {basic}"}, form)
        assert status == 200 and granted["scope"] == "serviceFind"
        bearer = {"Authorization": f"Bearer {granted['access_token']}"}
        status, services = _call(f"{base}{INV}/service", context, bearer)
        assert status == 200 and {s["id"] for s in services} >= {"ovc-1001"}
        status, body = _call(f"{base}{INV}/service/ovc-1001", context, bearer)  # serviceGet: not granted
        assert status == 403 and body["code"] == "accessDenied"
        status, meta = _call(f"{base}/.well-known/openid-configuration", context, {})
        assert meta["issuer"] == base and meta["token_endpoint"] == f"{base}/oauth2/token"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    text = out.decode()
    assert proc.returncode == 0, text
    assert "OAuth2 access tokens required" in text and SECRET not in text


def test_a_netconf_password_on_the_command_line_is_refused() -> None:
    result = CliRunner().invoke(emulate, ["--netconf-password", "visible-in-ps"])
    assert result.exit_code == 2 and "INTERLUDE_NETCONF_PASSWORD" in result.output
