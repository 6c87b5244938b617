"""A first run as a new user makes it: ``interlude emulate`` in a fresh folder, then the client commands.

One emulator process serves the whole module; each command is the installed ``interlude`` as a user types it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.wait import wait_until_sync

INTERLUDE = str(Path(sys.executable).parent / "interlude")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Partner:
    """The running emulator: its URL, its folder and (after it stopped) everything it printed."""

    def __init__(self, url: str, cwd: Path, proc: subprocess.Popen[bytes]) -> None:
        self.url, self.cwd, self.proc = url, cwd, proc

    def client(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([INTERLUDE, "client", "--url", self.url, *args], capture_output=True, text=True,
                              timeout=60, cwd=self.cwd, env=os.environ, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def partner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Partner]:
    cwd = tmp_path_factory.mktemp("first-run")
    port = _free_port()
    log = (cwd / "emulate.out").open("wb")
    proc = subprocess.Popen([INTERLUDE, "emulate", "--port", str(port), "--no-device-agents"], stdout=log,
                            stderr=subprocess.STDOUT, cwd=cwd)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_sync(lambda: urllib.request.urlopen(f"{url}/ready", timeout=2).status == 200, timeout=60,
                        interval=0.2, ignore=(OSError,), what="the emulator to be ready")  # fmt: skip
        yield Partner(url, cwd, proc)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        log.close()


def test_the_banner_names_console_docs_metrics_and_the_state(partner: Partner) -> None:
    def banner() -> str | None:
        text = (partner.cwd / "emulate.out").read_text()
        return text if "as an SP" in text else None

    out = wait_until_sync(banner, timeout=20, what="the banner")
    assert f"{partner.url}/console/" in out and f"{partner.url}/docs" in out and f"{partner.url}/metrics" in out
    assert ".interlude/metro-partner.db" in out  # the one default state path
    assert "Warning" not in out and "Traceback" not in out
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 INFO ", out, re.M)


def test_client_commands_as_the_readme_shows_them(partner: Partner) -> None:
    services = partner.client("--buyer", "sp-alpha", "--json", "services")
    assert services.returncode == 0, services.stderr
    ids = {s["id"] for s in json.loads(services.stdout)}
    assert "ovc-1001" in ids and "ovc-2001" not in ids  # sp-beta's
    locked = partner.client("--buyer", "sp-alpha", "lock", "pe1-uni1")
    assert locked.returncode == 0 and "1:modify:completed" in locked.stdout, locked.stdout + locked.stderr
    table = partner.client("--buyer", "sp-alpha", "service", "ovc-1001")
    assert "DISABLED" in table.stdout
    assert partner.client("--buyer", "sp-alpha", "unlock", "pe1-uni1").returncode == 0
    result = partner.client("--buyer", "sp-alpha", "--json", "test", "delay", "ovc-1001", "--wait")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["serviceSpecificTestResultConfiguration"]["verdict"] in ("pass", "fail")
    report = partner.client("--buyer", "sp-alpha", "pm", "ovc-1001", "--every", "1", "--wait")
    assert report.returncode == 0 and "(completed)" in report.stdout and "pe1:uni1" in report.stdout, report.stdout
    unknown = partner.client("--buyer", "sp-alpha", "service", "nope")
    assert unknown.returncode == 1 and "404" in unknown.stdout
    for done in (services, locked, table, result, report, unknown):
        assert done.stderr == ""


def test_listen_prints_notifications_and_unregisters_on_ctrl_c(partner: Partner) -> None:
    out = partner.cwd / "listen.out"
    with out.open("w") as sink:
        proc = subprocess.Popen([INTERLUDE, "client", "--url", partner.url, "--buyer", "sp-alpha", "listen", "--api",
                                 "alarms"], stdout=sink, stderr=subprocess.STDOUT, cwd=partner.cwd)  # fmt: skip
        try:
            wait_until_sync(lambda: "listening at" in out.read_text(), timeout=30, what="the listener to register")
            cut = partner.client("--json", "fault", "linkDown", "pe1:up1")
            assert cut.returncode == 0, cut.stderr
            wait_until_sync(lambda: "alarmCreateEvent" in out.read_text(), timeout=30, what="the alarm notification")
            assert partner.client("clear", json.loads(cut.stdout)["id"]).returncode == 0
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    assert proc.returncode == 0, out.read_text()
    unregistered = "DELETE /mefApi/interlude/alarmManagement/v3/hub/"
    wait_until_sync(lambda: unregistered in (partner.cwd / "emulate.out").read_text(), timeout=10,
                    what="the hub registration removed on Ctrl-C")  # fmt: skip
