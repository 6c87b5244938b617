"""The command line answers ``--help`` without importing the partner, and prints nothing but the user's work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from interlude.cli.main import COMMANDS, main

SRC = Path(__file__).resolve().parents[3] / "src"


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=60,
                          check=False)  # fmt: skip


def test_help_lists_every_command_without_importing_them() -> None:
    code = ("import sys\nfrom interlude.cli.main import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('aiohttp', 'pydantic', 'asyncssh', 'pysnmp', 'rich') if m in sys.modules)\n"
            "print('HEAVY', heavy)")  # fmt: skip
    done = _python(code)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout
    assert all(name in done.stdout for name in COMMANDS)
    assert done.stderr == ""


def test_a_command_that_loads_asyncssh_prints_no_deprecation_noise() -> None:
    done = _python("from interlude.cli.main import main\nmain()", "emulate", "--help")
    assert done.returncode == 0, done.stderr
    assert "--log-format" in done.stdout and "--reset" in done.stdout
    assert done.stderr == ""


def test_every_listed_command_loads() -> None:
    runner = CliRunner()
    for name in COMMANDS:
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
