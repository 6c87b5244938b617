"""``interlude emulate --tokens FILE`` as a real process, and the CLI's help and errors about it."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from interlude.cli.serve import emulate, serve
from tests.support.wait import wait_until_sync

INV = "/mefApi/interlude/serviceInventory/v2"
TOKEN = "alpha-token-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_emulate_with_tokens(tmp_path: Path) -> None:
    port = _free_port()
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("- {buyer: sp-alpha, token: {env: ALPHA_TOKEN}}\n")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "interlude"), "emulate", "--port", str(port), "--db",
         str(tmp_path / "emu.db"), "--no-device-agents", "--tokens", str(tokens)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "ALPHA_TOKEN": TOKEN, "COLUMNS": "200"},
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}{INV}/service/ovc-1001"
        status, body = wait_until_sync(
            lambda: _get(url, {"X-Interlude-Buyer": "sp-alpha"}),
            timeout=30, interval=0.2, ignore=(OSError,), what="the partner to serve",
        )  # fmt: skip
        assert status == 401 and body["code"] == "missingCredentials"
        status, body = _get(url, {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and body["id"] == "ovc-1001"
        status, body = _get(url, {"Authorization": "Bearer wrong-token-0123456789"})
        assert status == 401 and body["code"] == "invalidCredentials"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    text = out.decode()
    assert proc.returncode == 0, text
    assert "bearer tokens required" in text and TOKEN not in text


def test_help_documents_tokens() -> None:
    for command in (emulate, serve):
        result = CliRunner().invoke(command, ["--help"], terminal_width=200)
        assert "--tokens" in result.output and "X-Interlude-Buyer" in result.output


def test_bad_token_file_stops_start_up(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("alpha-token-0123456789: sp-nobody\n")
    result = CliRunner().invoke(emulate, ["--tokens", str(tokens), "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 1
    assert "unknown buyer" in result.output and "alpha-token-0123456789" not in result.output
