"""Every command prints through :func:`interlude.cli.output.make_console`: long lines stay whole when piped."""

from __future__ import annotations

import io
import re
from pathlib import Path

import interlude.cli
from interlude.cli.output import make_console


def test_a_piped_console_does_not_fold_long_lines() -> None:
    out = io.StringIO()
    line = "GET /modifyProductOrderItemRequestedDeliveryDate/kit-unknown answered 501: " + "x" * 150
    make_console(out).print(line, markup=False)
    assert out.getvalue() == line + "\n"


def test_no_command_builds_its_own_rich_console() -> None:
    cli_dir = Path(interlude.cli.__file__).parent
    own = [
        path.name
        for path in sorted(cli_dir.glob("*.py"))
        if path.name != "output.py" and re.search(r"\bConsole\(", path.read_text(encoding="utf-8"))
    ]
    assert own == [], f"use make_console() instead of rich's Console() in {own}"
